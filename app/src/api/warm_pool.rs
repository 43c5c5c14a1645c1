//! A scale set's warm pool: its members and size, for the Instances tab, and its setting,
//! which the Settings tab saves or removes with or without JavaScript.

use flotilla_domain::FieldError;
use flotilla_domain::validation::{parse, parse_optional};
use flotilla_domain::warm_pool::{WarmPool, WarmPoolView};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::error::PortalError;

/// The warm pool of scale set `name`: its members (which the set's instances leave out),
/// its size and the arithmetic behind it.
#[server(prefix = "/_fn", endpoint = "warm-pool", client = crate::api::CsrfClient)]
pub async fn get_warm_pool(name: String) -> Result<WarmPoolView, ServerFnError> {
    use super::{fleet, server_error};
    fleet().warm_pool(&name).await.map_err(server_error)
}

/// The editor's fields as typed (`input[min_size]`, …). A checkbox is sent only when it is
/// ticked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarmPoolInput {
    #[serde(default)]
    pub min_size: String,
    /// Empty: the default (the autoscale maximum, else the capacity).
    #[serde(default)]
    pub max_prepared_capacity: String,
    #[serde(default)]
    pub pool_state: String,
    #[serde(default)]
    pub reuse_on_scale_in: Option<String>,
}

impl WarmPoolInput {
    /// The setting the fields describe, or what does not read, named as the domain's
    /// validation names the field (`warm_pool.min_size`); the bounds are the validation's.
    pub fn parse(&self) -> Result<WarmPool, FieldError> {
        Ok(WarmPool {
            min_size: parse("warm_pool.min_size", &self.min_size)?,
            max_prepared_capacity: parse_optional(
                "warm_pool.max_prepared_capacity",
                &self.max_prepared_capacity,
            )?,
            pool_state: self.pool_state.parse().map_err(|message| FieldError {
                field: "warm_pool.pool_state".into(),
                message,
            })?,
            reuse_on_scale_in: self.reuse_on_scale_in.is_some(),
        })
    }
}

/// Saves the warm pool of scale set `name` as `input` describes it (`op` = `save`), or
/// removes it (`op` = `remove`: its members are deleted). Answers the pool as stored.
#[server(prefix = "/_fn", endpoint = "save-warm-pool", client = crate::api::CsrfClient)]
pub async fn save_warm_pool(
    name: String,
    op: String,
    input: WarmPoolInput,
) -> Result<Option<WarmPool>, PortalError> {
    use super::{refuse, refused, return_to};
    return_to(&format!(
        "/scale-sets/{}/settings",
        flotilla_domain::url::percent_encode(&name)
    ));
    let pool = match op.as_str() {
        "save" => Some(
            input
                .parse()
                .map_err(|e| refuse(PortalError::field(&e.field, e.message), 422))?,
        ),
        "remove" => None,
        other => {
            return Err(refuse(
                PortalError::field("op", format!("must be save or remove, got {other:?}")),
                422,
            ));
        }
    };
    let patch = flotilla_domain::ScaleSetPatch {
        warm_pool: Some(pool),
        ..Default::default()
    };
    let stored = super::fleet()
        .update_scale_set(&name, patch, &super::actor())
        .await
        .map_err(refused)?;
    Ok(stored.spec.warm_pool)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_domain::WarmPoolState;

    fn input(min: &str, max: &str, state: &str, reuse: bool) -> WarmPoolInput {
        WarmPoolInput {
            min_size: min.into(),
            max_prepared_capacity: max.into(),
            pool_state: state.into(),
            reuse_on_scale_in: reuse.then(|| "on".into()),
        }
    }

    #[test]
    fn fields_as_typed() {
        assert_eq!(
            input(" 2 ", "", "paused", true).parse(),
            Ok(WarmPool {
                min_size: 2,
                max_prepared_capacity: None,
                pool_state: WarmPoolState::Paused,
                reuse_on_scale_in: true,
            })
        );
        let pool = input("1", "4", "stopped", false).parse().unwrap();
        assert_eq!(pool.max_prepared_capacity, Some(4));
        assert!(!pool.reuse_on_scale_in);
        // Out of bounds reads: the validation refuses it, with the bounds.
        assert_eq!(
            input("10001", "", "stopped", false)
                .parse()
                .unwrap()
                .min_size,
            10_001
        );
        let field = |i: WarmPoolInput| i.parse().unwrap_err().field;
        assert_eq!(
            field(input("-1", "", "stopped", false)),
            "warm_pool.min_size"
        );
        assert_eq!(field(input("", "", "stopped", false)), "warm_pool.min_size");
        assert_eq!(
            field(input("1", "four", "stopped", false)),
            "warm_pool.max_prepared_capacity"
        );
        assert_eq!(
            field(input("1", "", "asleep", false)),
            "warm_pool.pool_state"
        );
    }
}
