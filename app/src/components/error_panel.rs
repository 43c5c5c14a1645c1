use leptos::prelude::*;

/// An error from the server, said plainly.
#[component]
pub fn ErrorPanel(
    /// The failed call's error.
    error: ServerFnError,
) -> impl IntoView {
    view! {
        <div class="panel panel-error" role="alert">
            <p class="panel-title">"Something went wrong"</p>
            <p>{message(&error)}</p>
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
