use leptos::prelude::*;

use crate::api::error::split_request_id;
use crate::status::set_status;

/// An error from the server, said plainly, with the request id to quote when reporting it.
///
/// Pages show it when their data failed to load: rendered on the server, the page then
/// answers 500. A failure inside the server names its request (see
/// [`crate::api::error`]) — the page request's when the page was rendered on the server,
/// the server function call's in the browser — and the panel shows that id on its own line.
/// The panel shows only what the error carries, so the server's and the browser's
/// renderings agree when the page hydrates.
#[component]
pub fn ErrorPanel(
    /// The failed call's error.
    error: ServerFnError,
) -> impl IntoView {
    set_status(500);
    let message = message(&error);
    let (text, named) = split_request_id(&message);
    let request_id = named.map(str::to_string);
    view! {
        <div class="panel panel-error" role="alert">
            <p class="panel-title">"Something went wrong"</p>
            <p>{text.to_string()}</p>
            {request_id
                .map(|id| {
                    let code = id.clone();
                    view! {
                        <p class="request-id" data-request-id=id>
                            "Request id: "
                            <code>{code}</code>
                            ". Quote it when reporting the problem."
                        </p>
                    }
                })}
        </div>
    }
}

/// The message a server function's error carries, without the framework's preamble.
fn message(error: &ServerFnError) -> String {
    match error {
        ServerFnError::ServerError(message) => message.clone(),
        other => other.to_string(),
    }
}
