//! The error of the portal's changing server functions: a sentence to show, the messages
//! per input field, and what the person typed, so a refused form can be shown again with
//! its input and its messages — after a JavaScript call as after a plain form post (the
//! server then redirects back with the error in the URL, and the page renders it).

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
            other => Self::new(other.to_string()),
        }
    }
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
    fn survives_the_url_round_trip() {
        let error = PortalError::field("capacity", "must be a whole number")
            .with_input(Some("abc".into()))
            .with_target("web_1");
        assert_eq!(PortalError::de(error.ser()), error);
    }
}
