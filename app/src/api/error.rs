//! The error of the portal's changing server functions: a sentence to show, the messages
//! per input field, and what the person typed, so a refused form can be shown again with
//! its input and its messages — after a JavaScript call as after a plain form post (the
//! server then redirects back with the error in the URL, and the page renders it).
//!
//! A failure inside the server (the store, the backend) is logged once with its whole
//! chain and the request id (`x-request-id`, set by the server for every request), and
//! the message the person sees ends with that id: `… (request id 0f3c…)`, as in the REST
//! API's problems. [`split_request_id`] takes it apart again for display.

use flotilla_domain::FieldError;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalError {
    /// What went wrong, in one sentence.
    pub message: String,
    /// A message per input field (`capacity`, …), when the input was refused.
    pub fields: Vec<FieldError>,
    /// What the error concerns (an instance id), when a page shows several forms.
    pub target: Option<String>,
    /// The input as typed, to put back in the field.
    pub input: Option<String>,
}

impl PortalError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Self::default()
        }
    }

    /// An error about one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            message: format!("{field}: {message}"),
            fields: vec![FieldError {
                field: field.into(),
                message,
            }],
            ..Self::default()
        }
    }

    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn with_input(mut self, input: Option<String>) -> Self {
        self.input = input;
        self
    }

    /// The messages about `field`, or the general message when the error names no field.
    pub fn message_for(&self, field: &str) -> String {
        let own: Vec<&str> = self
            .fields
            .iter()
            .filter(|f| f.field == field)
            .map(|f| f.message.as_str())
            .collect();
        if own.is_empty() {
            self.message.clone()
        } else {
            own.join("; ")
        }
    }
}

impl std::fmt::Display for PortalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl FromServerFnError for PortalError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let message = match value {
            ServerFnErrorErr::ServerError(message) => message,
            // The form's fields did not fit the function's arguments.
            ServerFnErrorErr::Args(message) => format!("the form could not be read: {message}"),
            other => other.to_string(),
        };
        Self::new(message)
    }
}

#[cfg(feature = "ssr")]
impl From<flotilla_control::Error> for PortalError {
    fn from(error: flotilla_control::Error) -> Self {
        match error {
            flotilla_control::Error::Invalid(errors) => Self {
                message: errors.to_string(),
                fields: errors.0,
                ..Self::default()
            },
            other => Self::new(reported(&other)),
        }
    }
}

/// How a message names the request it failed in; the id follows, then `)`.
const REQUEST_ID_MARK: &str = " (request id ";

/// A message and the request id it ends with, if it ends with one.
pub fn split_request_id(message: &str) -> (&str, Option<&str>) {
    message
        .strip_suffix(')')
        .and_then(|rest| rest.rsplit_once(REQUEST_ID_MARK))
        .filter(|(_, id)| !id.is_empty() && !id.contains([' ', '(', ')']))
        .map_or((message, None), |(text, id)| (text, Some(id)))
}

/// `message` ending with the request id, if there is one.
pub fn with_request_id(message: &str, request_id: Option<&str>) -> String {
    match request_id {
        Some(id) => format!("{message}{REQUEST_ID_MARK}{id})"),
        None => message.to_string(),
    }
}

/// The id the server gave the request being answered (its `x-request-id`).
#[cfg(feature = "ssr")]
pub fn request_id() -> Option<String> {
    leptos::prelude::use_context::<http::request::Parts>().and_then(|parts| {
        parts
            .headers
            .get("x-request-id")
            .and_then(|id| id.to_str().ok())
            .map(str::to_string)
    })
}

/// What to tell the person about `error`: its message, and for a failure inside the server
/// the request id too, after logging the failure with its whole chain under that id.
#[cfg(feature = "ssr")]
pub(crate) fn reported(error: &flotilla_control::Error) -> String {
    use flotilla_control::Error;
    // The REST API's server errors (502 and 500); the others are the person's to fix.
    if !matches!(error, Error::Backend { .. } | Error::Store { .. }) {
        return error.to_string();
    }
    let request_id = request_id();
    tracing::error!(
        request_id = request_id.as_deref().unwrap_or("-"),
        error = %flotilla_control::error::chain(error),
        "portal request failed"
    );
    with_request_id(&error.to_string(), request_id.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_messages_are_picked_by_field() {
        let error = PortalError {
            message: "invalid input".into(),
            fields: vec![
                FieldError {
                    field: "capacity".into(),
                    message: "too big".into(),
                },
                FieldError {
                    field: "zones".into(),
                    message: "unknown".into(),
                },
            ],
            ..PortalError::default()
        };
        assert_eq!(error.message_for("capacity"), "too big");
        assert_eq!(error.message_for("name"), "invalid input");
        assert_eq!(
            PortalError::field("capacity", "x").message_for("capacity"),
            "x"
        );
    }

    #[test]
    fn the_request_id_is_split_off_the_message() {
        let table = [
            (
                "store failed (request id abc-1)",
                ("store failed", Some("abc-1")),
            ),
            ("store failed", ("store failed", None)),
            ("a (b) c", ("a (b) c", None)),
            ("odd (request id )", ("odd (request id )", None)),
            ("odd (request id a b)", ("odd (request id a b)", None)),
        ];
        for (message, expected) in table {
            assert_eq!(split_request_id(message), expected, "{message:?}");
        }
        let joined = with_request_id("store failed", Some("abc-1"));
        assert_eq!(split_request_id(&joined), ("store failed", Some("abc-1")));
        assert_eq!(with_request_id("store failed", None), "store failed");
    }

    #[test]
    fn survives_the_url_round_trip() {
        let error = PortalError::field("capacity", "must be a whole number")
            .with_input(Some("abc".into()))
            .with_target("web_1");
        assert_eq!(PortalError::de(error.ser()), error);
    }
}
