//! The tokens `flotilla login` stored: `$XDG_CONFIG_HOME/flotilla/credentials.json` (else
//! `$HOME/.config/flotilla/credentials.json`), a JSON map from server URL to API token.
//!
//! Invariants: the directory is `0700` and the file `0600` from the moment it exists — a
//! new version is written to a private temporary file in the same directory and renamed
//! over the old one, so a reader sees the old map or the new, never half of one, and the
//! secret never sits in a file others may read. Nothing but tokens is stored (no password).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::CliError;

/// The credentials file of this user, from `XDG_CONFIG_HOME` or `HOME`.
pub fn default_path() -> Result<PathBuf, CliError> {
    let from = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let config = from("XDG_CONFIG_HOME")
        .or_else(|| from("HOME").map(|home| home.join(".config")))
        .ok_or_else(|| {
            CliError::Input(
                "neither XDG_CONFIG_HOME nor HOME is set: nowhere to keep credentials \
                 (pass --token or FLOTILLA_TOKEN)"
                    .into(),
            )
        })?;
    Ok(config.join("flotilla").join("credentials.json"))
}

/// A server URL as a key of the map: `http://host:3000/` and `http://host:3000` are one.
pub fn key(server: &str) -> String {
    server.trim().trim_end_matches('/').to_string()
}

/// The stored tokens, by server.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    path: PathBuf,
    tokens: BTreeMap<String, String>,
}

impl Credentials {
    /// Reads the file at `path`; a missing file is an empty map.
    pub fn load(path: &Path) -> Result<Self, CliError> {
        let tokens = match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                CliError::Input(format!(
                    "{} is not a map of server URLs to tokens: {e}",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(CliError::Input(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            tokens,
        })
    }

    pub fn token(&self, server: &str) -> Option<&str> {
        self.tokens.get(&key(server)).map(String::as_str)
    }

    /// Sets (`Some`) or removes (`None`) the token of `server` and writes the file.
    pub fn save(&mut self, server: &str, token: Option<String>) -> Result<(), CliError> {
        match token {
            Some(token) => self.tokens.insert(key(server), token),
            None => self.tokens.remove(&key(server)),
        };
        self.write()
    }

    fn write(&self) -> Result<(), CliError> {
        let failed = |what: &str, e: std::io::Error| {
            CliError::Input(format!("cannot {what} {}: {e}", self.path.display()))
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| failed("create the directory of", e))?;
        // An existing directory keeps its mode from `create`: tighten it too.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| failed("make private the directory of", e))?;
        let text = serde_json::to_string_pretty(&self.tokens).expect("a map of strings") + "\n";
        let temp = dir.join(format!(
            ".credentials.json.{}.{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .and_then(|mut file| {
                file.write_all(text.as_bytes())?;
                file.sync_all()
            })
            .and_then(|()| std::fs::rename(&temp, &self.path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(failed("write", e));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn tokens_are_kept_per_server_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config/flotilla/credentials.json");
        let mut creds = Credentials::load(&path).unwrap();
        assert_eq!(creds.token("http://a:3000"), None);

        creds.save("http://a:3000/", Some("flt_a".into())).unwrap();
        creds.save("http://b:3000", Some("flt_b".into())).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);

        let mut again = Credentials::load(&path).unwrap();
        assert_eq!(again.token("http://a:3000"), Some("flt_a"));
        assert_eq!(again, creds);
        again.save("http://a:3000", None).unwrap();
        let last = Credentials::load(&path).unwrap();
        assert_eq!(last.token("http://a:3000"), None);
        assert_eq!(last.token("http://b:3000/"), Some("flt_b"));
        // Only the file is left: no temporary files.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[test]
    fn a_widened_directory_is_made_private_again() {
        let dir = tempfile::tempdir().unwrap();
        let flotilla = dir.path().join("flotilla");
        std::fs::create_dir(&flotilla).unwrap();
        std::fs::set_permissions(&flotilla, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = flotilla.join("credentials.json");
        Credentials::load(&path)
            .unwrap()
            .save("http://a", Some("flt_a".into()))
            .unwrap();
        assert_eq!(mode(&flotilla), 0o700);
    }

    #[test]
    fn a_damaged_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.json");
        std::fs::write(&path, "not json").unwrap();
        let err = Credentials::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("is not a map of server URLs to tokens"),
            "{err}"
        );
    }
}
