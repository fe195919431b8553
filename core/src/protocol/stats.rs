//! The `stats` reply: `ok <json>` decoded into typed records (which
//! serialize back to the same JSON, for tools that print it).

use serde::{Deserialize, Serialize};

use super::{reply::status_error, reply::ErrorContext, Error};

/// A held lock.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct LockInfo {
    /// The key.
    pub key: String,
    /// The server's id of the holding connection.
    pub owner_conn_id: u64,
    /// Seconds until the lease runs out.
    pub lease_expires_in_s: f64,
    /// Queued waiters.
    pub waiters: u32,
}

/// A semaphore with holders or waiters.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct SemaphoreInfo {
    /// The key.
    pub key: String,
    /// The key's limit.
    pub limit: u32,
    /// Current holders.
    pub holders: u32,
    /// Queued waiters.
    pub waiters: u32,
}

/// A key nobody holds that the server still remembers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct IdleInfo {
    /// The key.
    pub key: String,
    /// Seconds since last use.
    pub idle_s: f64,
}

/// The server's tables. Unknown fields are ignored; a missing list is an error.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Stats {
    /// Open client connections.
    pub connections: u64,
    /// Held locks.
    pub locks: Vec<LockInfo>,
    /// Semaphores in use.
    pub semaphores: Vec<SemaphoreInfo>,
    /// Idle lock keys.
    pub idle_locks: Vec<IdleInfo>,
    /// Idle semaphore keys.
    pub idle_semaphores: Vec<IdleInfo>,
    /// A clustered server's `cluster` object, kept as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<serde_json::Value>,
}

/// Decodes `ok <json>`.
pub fn decode_stats(line: &str) -> Result<Stats, Error> {
    decode_json(stats_json(line)?)
}

/// The JSON object of `ok <json>`, not parsed: the component passes it on
/// as text, because parsing it there would take serde_json into the
/// component (~50 KB, and its size is a goal); each host decodes it
/// ([`decode_json`], `JSON.parse`, `json.loads`).
pub fn stats_json(line: &str) -> Result<&str, Error> {
    let (status, rest) = line.split_once(' ').unwrap_or((line, ""));
    if status != "ok" {
        return Err(
            status_error(status, rest, ErrorContext::Request).unwrap_or_else(|| {
                Error::Protocol(format!("unexpected stats reply: {:?}", super::redact(line)))
            }),
        );
    }
    if !(rest.starts_with('{') && rest.ends_with('}')) {
        return Err(Error::Protocol(format!(
            "the stats reply is no JSON object: {:?}",
            super::redact(line)
        )));
    }
    Ok(rest)
}

/// Decodes the JSON object of a `stats` reply.
pub fn decode_json(json: &str) -> Result<Stats, Error> {
    serde_json::from_str(json).map_err(|e| Error::Protocol(format!("bad stats JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_table_and_ignores_unknown_fields() {
        let line = r#"ok {"connections":3,"locks":[{"key":"a","owner_conn_id":7,"lease_expires_in_s":12.5,"waiters":2,"new":1}],"semaphores":[{"key":"p","limit":3,"holders":2,"waiters":0}],"idle_locks":[{"key":"b","idle_s":1.25}],"idle_semaphores":[],"future":true}"#;
        let stats = decode_stats(line).unwrap();
        assert_eq!(stats.connections, 3);
        assert_eq!(
            stats.locks,
            vec![LockInfo {
                key: "a".into(),
                owner_conn_id: 7,
                lease_expires_in_s: 12.5,
                waiters: 2
            }]
        );
        assert_eq!(stats.semaphores[0].limit, 3);
        assert_eq!(stats.idle_locks[0].idle_s, 1.25);
        assert!(stats.idle_semaphores.is_empty());
        assert_eq!(stats.cluster, None);
    }

    #[test]
    fn keeps_the_cluster_object() {
        let line = r#"ok {"connections":0,"locks":[],"semaphores":[],"idle_locks":[],"idle_semaphores":[],"cluster":{"leader":"x"}}"#;
        assert_eq!(
            decode_stats(line).unwrap().cluster.unwrap().to_string(),
            r#"{"leader":"x"}"#
        );
    }

    #[test]
    fn missing_lists_and_bad_json_are_protocol_errors() {
        for line in [
            r#"ok {"connections":0}"#,
            "ok {",
            "ok",
            "ok []",
            "nope",
            r#"ok {"connections":-1,"locks":[],"semaphores":[],"idle_locks":[],"idle_semaphores":[]}"#,
        ] {
            assert!(
                matches!(decode_stats(line), Err(Error::Protocol(_))),
                "{line}"
            );
        }
        assert_eq!(decode_stats("error_draining"), Err(Error::Draining));
    }
}
