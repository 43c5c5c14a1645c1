//! Asking for names and passwords: a password is read without echo from the terminal
//! (`rpassword`), or from standard input with `--password-stdin` (scripts). Reading blocks,
//! so it runs on the blocking pool, off the async threads.

use std::io::{BufRead, IsTerminal, Write};

use super::CliError;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CliError> + Send + 'static,
) -> Result<T, CliError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(CliError::Input(format!("reading input failed: {e}"))))
}

/// The whole of standard input less its final line break: a password piped in.
pub async fn password_from_stdin() -> Result<String, CliError> {
    blocking(|| {
        let text = std::io::read_to_string(std::io::stdin())
            .map_err(|e| CliError::Input(format!("cannot read the password from stdin: {e}")))?;
        let password = text.strip_suffix('\n').unwrap_or(&text);
        let password = password.strip_suffix('\r').unwrap_or(password);
        if password.is_empty() {
            return Err(CliError::Input(
                "--password-stdin: standard input holds no password".into(),
            ));
        }
        Ok(password.to_string())
    })
    .await
}

/// Asks for a password on the terminal, without echo.
pub async fn password(prompt: String) -> Result<String, CliError> {
    blocking(move || {
        rpassword::prompt_password(prompt).map_err(|e| {
            CliError::Input(format!(
                "cannot ask for the password ({e}): pass it on standard input with --password-stdin"
            ))
        })
    })
    .await
}

/// Asks for a new password twice, without echo; they must match.
pub async fn new_password(user: &str) -> Result<String, CliError> {
    let first = password(format!("New password for {user}: ")).await?;
    let again = password("Repeat it: ".to_string()).await?;
    if first != again {
        return Err(CliError::Input(
            "the passwords differ: nothing changed".into(),
        ));
    }
    Ok(first)
}

/// A password: from standard input with `--password-stdin`, else asked twice.
pub async fn new_password_from(user: &str, stdin: bool) -> Result<String, CliError> {
    if stdin {
        password_from_stdin().await
    } else {
        new_password(user).await
    }
}

/// Asks for a line on a terminal (`default` on an empty answer); without a terminal,
/// answers `default` without asking.
pub async fn line(prompt: String, default: String) -> Result<String, CliError> {
    blocking(move || {
        if !std::io::stdin().is_terminal() {
            return Ok(default);
        }
        let mut err = std::io::stderr();
        let _ = write!(err, "{prompt} [{default}]: ");
        let _ = err.flush();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| CliError::Input(format!("cannot read the answer: {e}")))?;
        let answer = answer.trim();
        Ok(if answer.is_empty() {
            default
        } else {
            answer.to_string()
        })
    })
    .await
}
