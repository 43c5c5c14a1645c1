//! Scale-action notifications: every webhook of a set's autoscale setting gets a JSON
//! `POST` per scale action — operation, old and new capacity, reason, decision id —
//! signed with HMAC-SHA256 of the body under the webhook's secret
//! (`X-Flotilla-Signature: sha256=<hex>`), retried with exponential backoff (1, 2, 4, 8 s;
//! five attempts, 10 s each) until a 2xx answer. Each delivery is an activity entry
//! (`autoscale.webhook`) that ends succeeded or failed with its attempts; deliveries a
//! stopped control plane left in progress are sent again when it starts.
//!
//! HTTPS URLs are verified against the system's certificate store.

use std::sync::Arc;
use std::time::Duration;

use flotilla_domain::autoscale::Decision;
use flotilla_domain::autoscale::decision::DecisionFilter;
use flotilla_domain::autoscale::setting::Webhook;
use flotilla_domain::{ActivityFilter, ActivityResult, NewActivity};
use serde_json::json;
use tokio::net::TcpStream;

use crate::error::chain;
use crate::fleet::Shared;

/// The activity entry of one delivery.
const OPERATION: &str = "autoscale.webhook";
const ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a webhook URL points.
#[derive(Debug, PartialEq)]
struct Target {
    https: bool,
    host: String,
    port: u16,
    path: String,
}

fn parse(url: &str) -> Result<Target, String> {
    let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(format!("{url:?} is not an http(s) URL"));
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
            h.trim_matches(['[', ']']).to_string(),
            p.parse::<u16>()
                .map_err(|_| format!("bad port in {url:?}"))?,
        ),
        _ => (
            authority.trim_matches(['[', ']']).to_string(),
            if https { 443 } else { 80 },
        ),
    };
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    Ok(Target {
        https,
        host,
        port,
        path,
    })
}

/// The signature header's value for `body` under `secret`.
pub(crate) fn signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The JSON a webhook receives for a scale action.
fn payload(decision: &Decision, activity: Option<i64>) -> Vec<u8> {
    let payload = json!({
        "operation": decision.operation,
        "scale_set": decision.scale_set,
        "old_capacity": decision.current,
        "new_capacity": decision.new_capacity,
        "reason": decision.reason,
        "profile": decision.profile,
        "decision_id": decision.id,
        "activity_id": activity,
        "at": decision.at,
    });
    serde_json::to_vec(&payload).expect("a JSON value serializes")
}

/// Announces a scale action to each webhook, in the background.
pub(crate) fn announce(
    shared: &Arc<Shared>,
    decision: &Decision,
    activity: Option<i64>,
    hooks: Vec<Webhook>,
) {
    let body = Arc::new(payload(decision, activity));
    for hook in hooks {
        let shared = shared.clone();
        let body = body.clone();
        let decision_id = decision.id;
        let set = decision.scale_set.clone();
        shared.clone().spawn_background(async move {
            let entry = shared
                .record(NewActivity {
                    operation: OPERATION.into(),
                    actor: "system:autoscale".into(),
                    scale_set: Some(set),
                    target: hook.url.clone(),
                    started_at: shared.clock.now(),
                    ended_at: None,
                    result: ActivityResult::InProgress,
                    error: None,
                    details: json!({"url": hook.url, "decision_id": decision_id, "activity_id": activity}),
                })
                .await;
            deliver(&shared, entry.map(|e| e.id), decision_id, &hook, &body).await;
        });
    }
}

/// Finishes the deliveries a stopped control plane left in progress: each is sent again
/// with the same payload (rebuilt from its stored decision) under the same activity entry.
pub(crate) async fn resume(shared: &Arc<Shared>) -> crate::Result<()> {
    let pending = shared
        .store
        .list_activity(&ActivityFilter {
            operation: Some(OPERATION.into()),
            result: Some(ActivityResult::InProgress),
            limit: 1000,
            ..ActivityFilter::default()
        })
        .await
        .map_err(crate::Error::store("list webhook deliveries"))?;
    for entry in pending {
        let details = &entry.details;
        let (Some(set), Some(decision_id), Some(url)) = (
            entry.scale_set.clone(),
            details["decision_id"].as_i64(),
            details["url"].as_str().map(str::to_string),
        ) else {
            continue;
        };
        let decision = shared
            .store
            .list_decisions(&DecisionFilter {
                scale_set: set.clone(),
                operation: None,
                since: None,
                until: None,
                before_id: Some(decision_id + 1),
                limit: 1,
            })
            .await
            .map_err(crate::Error::store("read a decision"))?
            .into_iter()
            .find(|d| d.id == decision_id);
        let hook = shared
            .store
            .get_scale_set(&set)
            .await
            .map_err(crate::Error::store("read a scale set"))?
            .and_then(|s| s.spec.autoscale)
            .and_then(|a| a.notifications.webhooks.into_iter().find(|h| h.url == url));
        let (Some(decision), Some(hook)) = (decision, hook) else {
            finish(
                shared,
                entry.id,
                Err("not resumed after a restart: the decision or the webhook is gone".into()),
                0,
                &url,
                decision_id,
            )
            .await;
            continue;
        };
        let body = payload(&decision, details["activity_id"].as_i64());
        let shared = shared.clone();
        shared.clone().spawn_background(async move {
            deliver(&shared, Some(entry.id), decision_id, &hook, &body).await;
        });
    }
    Ok(())
}

async fn deliver(
    shared: &Shared,
    entry: Option<i64>,
    decision_id: i64,
    hook: &Webhook,
    body: &[u8],
) {
    let mut backoff = FIRST_BACKOFF;
    let mut outcome = Err(String::new());
    let mut attempts = 0;
    for attempt in 1..=ATTEMPTS {
        attempts = attempt;
        outcome = match tokio::time::timeout(ATTEMPT_TIMEOUT, post(hook, decision_id, body)).await {
            Ok(Ok(code)) if (200..300).contains(&code) => Ok(code),
            Ok(Ok(code)) => Err(format!("answered {code}")),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())),
        };
        if outcome.is_ok() || attempt == ATTEMPTS {
            break;
        }
        tracing::info!(url = %hook.url, attempt, error = ?outcome, "webhook delivery failed; retrying");
        tokio::time::sleep(backoff).await;
        backoff *= 2;
    }
    if let Some(entry) = entry {
        finish(shared, entry, outcome, attempts, &hook.url, decision_id).await;
    }
}

/// Closes a delivery's activity entry.
async fn finish(
    shared: &Shared,
    entry: i64,
    outcome: Result<u16, String>,
    attempts: u32,
    url: &str,
    decision_id: i64,
) {
    let (result, error, status) = match &outcome {
        Ok(code) => (ActivityResult::Succeeded, None, Some(*code)),
        Err(e) => (ActivityResult::Failed, Some(e.as_str()), None),
    };
    let details = json!({
        "url": url,
        "decision_id": decision_id,
        "attempts": attempts,
        "status": status,
    });
    match shared
        .store
        .finish_activity(entry, shared.clock.now(), result, error, &details)
        .await
    {
        Ok(activity) => shared.events.publish(flotilla_domain::Event::Activity {
            activity: Box::new(activity),
        }),
        Err(e) => tracing::warn!(error = %chain(&e), "could not record a webhook delivery"),
    }
}

/// One attempt: the status code answered.
async fn post(hook: &Webhook, decision_id: i64, body: &[u8]) -> Result<u16, String> {
    let target = parse(&hook.url)?;
    let stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("connect to {}:{}: {e}", target.host, target.port))?;
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: flotilla-webhook\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-Flotilla-Event: autoscale.scale\r\nX-Flotilla-Decision: {decision_id}\r\nConnection: close\r\n",
        target.path,
        target.host,
        body.len()
    );
    if let Some(secret) = &hook.secret {
        head.push_str(&format!(
            "X-Flotilla-Signature: {}\r\n",
            signature(secret, body)
        ));
    }
    head.push_str("\r\n");
    let answer = if target.https {
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|e| format!("bad host name: {e}"))?;
        let tls = verified_tls()?
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        crate::prober::send(tls, &head, body).await
    } else {
        crate::prober::send(stream, &head, body).await
    };
    match answer.map_err(|e| e.to_string())? {
        Some((code, _)) => Ok(code),
        None => Err("the answer is not HTTP".into()),
    }
}

/// A TLS client trusting the system's certificate store.
fn verified_tls() -> Result<tokio_rustls::TlsConnector, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    const BUNDLES: [&str; 3] = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ];
    let mut roots = rustls::RootCertStore::empty();
    for path in BUNDLES {
        if let Ok(certs) = CertificateDer::pem_file_iter(path) {
            for cert in certs.flatten() {
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        return Err("no system certificate store found for https webhooks".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        assert_eq!(
            parse("http://127.0.0.1:8080/hooks/a?x=1").unwrap(),
            Target {
                https: false,
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/hooks/a?x=1".into()
            }
        );
        assert_eq!(
            parse("https://hooks.example").unwrap(),
            Target {
                https: true,
                host: "hooks.example".into(),
                port: 443,
                path: "/".into()
            }
        );
        assert_eq!(parse("http://[::1]:9000/x").unwrap().host, "::1");
        assert!(parse("ftp://x").is_err());
    }

    #[test]
    fn signatures_are_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
