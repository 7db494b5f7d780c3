//! The REST transport: `/v1` over ureq (TLS 1.3 only when the server URL
//! is https).

use super::types::*;
use super::{CliError, Client, R};
use crate::policy::Rule;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::time::Duration;

pub struct Rest {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

fn transport(e: ureq::Error) -> CliError {
    match e {
        ureq::Error::Tls(m) => CliError::Tls(m.to_string()),
        ureq::Error::Rustls(r) => CliError::Tls(r.to_string()),
        ureq::Error::Pem(p) => CliError::Tls(p.to_string()),
        other => {
            // rustls failures during the handshake surface as IO errors.
            let m = other.to_string();
            let l = m.to_lowercase();
            if ["certificate", "tls", "handshake", "protocol version", "alert"].iter().any(|k| l.contains(k))
            {
                CliError::Tls(m)
            } else {
                CliError::Unreachable(m)
            }
        }
    }
}

impl Rest {
    pub fn new(server: &str, token: Option<String>, ca_pem: Option<&[u8]>) -> R<Rest> {
        let timeouts = crate::outbound::Timeouts {
            global: Some(Duration::from_secs(60)),
            connect: Duration::from_secs(10),
            response: Duration::from_secs(60),
        };
        let agent =
            crate::outbound::agent(ca_pem, timeouts).map_err(|e| CliError::Tls(format!("--ca-cert {e}")))?;
        Ok(Rest { base: server.trim_end_matches('/').to_string(), token, agent })
    }

    fn auth(&self) -> R<String> {
        match &self.token {
            Some(t) => Ok(format!("Bearer {t}")),
            None => {
                Err(CliError::Unauthenticated("no token: use --token, MCR_TOKEN or `mcrctl login`".into()))
            }
        }
    }

    fn call<T: DeserializeOwned>(&self, method: &str, path: &str, body: Option<Value>) -> R<T> {
        let url = format!("{}{path}", self.base);
        let auth = self.auth()?;
        let resp = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("Authorization", &auth).call(),
            ("DELETE", _) => self.agent.delete(&url).header("Authorization", &auth).call(),
            ("POST", Some(b)) => self.agent.post(&url).header("Authorization", &auth).send_json(b),
            ("POST", None) => self.agent.post(&url).header("Authorization", &auth).send_empty(),
            ("PUT", Some(b)) => self.agent.put(&url).header("Authorization", &auth).send_json(b),
            _ => return Err(CliError::Other(format!("unsupported call {method} {path}"))),
        }
        .map_err(transport)?;
        let status = resp.status().as_u16();
        let text = resp.into_body().with_config().limit(64 << 20).read_to_string().map_err(transport)?;
        if (200..300).contains(&status) {
            let v = if text.is_empty() { "null" } else { &text };
            return serde_json::from_str(v).map_err(|e| CliError::Other(format!("unexpected answer: {e}")));
        }
        let msg = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("HTTP {status}"));
        Err(match status {
            401 => CliError::Unauthenticated(msg),
            403 => CliError::Denied(msg),
            404 => CliError::NotFound(msg),
            409 => CliError::Conflict(msg),
            400 | 405 | 413 | 416 => CliError::Invalid(msg),
            503 => CliError::Unreachable(msg),
            _ => CliError::Other(msg),
        })
    }

    /// Exchanges a username and password for a token at `/v2/token`.
    pub fn login(&self, username: &str, password: &str) -> R<String> {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        let resp = self
            .agent
            .get(format!("{}/v2/token", self.base))
            .header("Authorization", &format!("Basic {basic}"))
            .call()
            .map_err(transport)?;
        let status = resp.status().as_u16();
        let v: Value = resp.into_body().read_json().unwrap_or(Value::Null);
        match status {
            200 => v["token"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| CliError::Other("no token in the answer".into())),
            401 => Err(CliError::Unauthenticated("wrong username or password".into())),
            429 => Err(CliError::Denied("too many failed logins; wait a minute".into())),
            s => Err(CliError::Other(format!("login answered HTTP {s}"))),
        }
    }
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

fn repo_row(v: &Value) -> RepoRow {
    RepoRow {
        name: s(&v["name"]),
        tags: v["tags"].as_i64().unwrap_or(0),
        manifests: v["manifests"].as_i64().unwrap_or(0),
        size_bytes: v["size_bytes"].as_i64().unwrap_or(0),
        created_at: v["created_at"].as_i64().unwrap_or(0),
    }
}

fn enc(name: &str) -> String {
    // Repository names are [a-z0-9._/-]: safe in a path as they are.
    name.to_string()
}

impl Client for Rest {
    fn status(&self) -> R<StatusOut> {
        let v: Value = self.call("GET", "/v1/status", None)?;
        let c = &v["counts"];
        Ok(StatusOut {
            version: s(&v["version"]),
            uptime_secs: v["uptime_secs"].as_i64().unwrap_or(0),
            repositories: c["repositories"].as_i64().unwrap_or(0),
            manifests: c["manifests"].as_i64().unwrap_or(0),
            tags: c["tags"].as_i64().unwrap_or(0),
            blobs: c["blobs"].as_i64().unwrap_or(0),
            storage_bytes: c["storage_bytes"].as_i64().unwrap_or(0),
            gc_running: v["gc"]["running"].as_bool().unwrap_or(false),
        })
    }

    fn repo_list(&self) -> R<Vec<RepoRow>> {
        let mut out = Vec::new();
        let mut last = String::new();
        loop {
            let path = if last.is_empty() {
                "/v1/repositories?n=1000".to_string()
            } else {
                format!("/v1/repositories?n=1000&last={last}")
            };
            let v: Value = self.call("GET", &path, None)?;
            out.extend(v["repositories"].as_array().into_iter().flatten().map(repo_row));
            match v["next"].as_str() {
                Some(n) => last = n.to_string(),
                None => return Ok(out),
            }
        }
    }

    fn repo_show(&self, name: &str) -> R<RepoDetail> {
        let v: Value = self.call("GET", &format!("/v1/repositories/{}", enc(name)), None)?;
        let tags = v["tag_list"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| TagRow {
                name: s(&t["name"]),
                digest: s(&t["digest"]),
                media_type: s(&t["media_type"]),
                updated_at: t["updated_at"].as_i64().unwrap_or(0),
            })
            .collect();
        Ok(RepoDetail { repository: repo_row(&v), tags })
    }

    fn repo_delete(&self, name: &str) -> R<()> {
        let _: Value = self.call("DELETE", &format!("/v1/repositories/{}", enc(name)), None)?;
        Ok(())
    }

    fn tag_delete(&self, name: &str, tag: &str) -> R<()> {
        let _: Value = self.call("DELETE", &format!("/v1/repositories/{}/tags/{tag}", enc(name)), None)?;
        Ok(())
    }

    fn policy_list(&self) -> R<Vec<Rule>> {
        self.call("GET", "/v1/policy/rules", None)
    }

    fn policy_get(&self, id: i64) -> R<Rule> {
        self.call("GET", &format!("/v1/policy/rules/{id}"), None)
    }

    fn policy_create(&self, r: &Rule) -> R<Rule> {
        self.call("POST", "/v1/policy/rules", Some(serde_json::to_value(r).unwrap_or_default()))
    }

    fn policy_update(&self, id: i64, r: &Rule) -> R<Rule> {
        self.call("PUT", &format!("/v1/policy/rules/{id}"), Some(serde_json::to_value(r).unwrap_or_default()))
    }

    fn policy_delete(&self, id: i64) -> R<()> {
        let _: Value = self.call("DELETE", &format!("/v1/policy/rules/{id}"), None)?;
        Ok(())
    }

    fn policy_set_enabled(&self, id: i64, on: bool) -> R<Rule> {
        let verb = if on { "enable" } else { "disable" };
        self.call("POST", &format!("/v1/policy/rules/{id}/{verb}"), None)
    }

    fn policy_test(&self, q: &PolicyTest) -> R<DecisionOut> {
        let body = json!({
            "username": q.username, "roles": q.roles, "account_type": q.account_type,
            "action": q.action, "repository": q.repository,
        });
        let v: Value = self.call("POST", "/v1/policy/evaluate", Some(body))?;
        serde_json::from_value(v).map_err(|e| CliError::Other(format!("unexpected answer: {e}")))
    }

    fn audit_query(&self, f: &AuditFilter) -> R<Vec<AuditOut>> {
        let mut q = vec![format!("limit={}", f.limit.max(1))];
        for (k, v) in [("type", &f.event_type), ("actor", &f.actor), ("repository", &f.repository)] {
            if let Some(v) = v {
                q.push(format!("{k}={}", v.replace('&', "%26").replace(' ', "%20")));
            }
        }
        if let Some(x) = f.since {
            q.push(format!("since={x}"));
        }
        if let Some(x) = f.after_id {
            q.push(format!("after={x}"));
        }
        let v: Value = self.call("GET", &format!("/v1/audit?{}", q.join("&")), None)?;
        Ok(v["events"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| AuditOut {
                id: e["id"].as_i64().unwrap_or(0),
                time: e["time"].as_i64().unwrap_or(0),
                event_type: s(&e["event_type"]),
                actor: s(&e["actor"]),
                repository: s(&e["repository"]),
                reference: s(&e["reference"]),
                outcome: s(&e["outcome"]),
            })
            .collect())
    }

    fn audit_verify(&self) -> R<VerifyOut> {
        let v: Value = self.call("GET", "/v1/audit/verify", None)?;
        serde_json::from_value(v).map_err(|e| CliError::Other(format!("unexpected answer: {e}")))
    }

    fn gc_trigger(&self) -> R<u64> {
        let v: Value = self.call("POST", "/v1/gc", None)?;
        Ok(v["run_id"].as_u64().unwrap_or(0))
    }

    fn gc_status(&self) -> R<GcOut> {
        let v: Value = self.call("GET", "/v1/gc/status", None)?;
        let l = &v["last"];
        Ok(GcOut {
            running: v["running"].as_bool().unwrap_or(false),
            last_run_id: l["run_id"].as_u64(),
            last_started_at: l["started_at"].as_i64(),
            last_finished_at: l["finished_at"].as_i64(),
            blobs_removed: l["blobs_removed"].as_u64().unwrap_or(0),
            bytes_freed: l["bytes_freed"].as_u64().unwrap_or(0),
            manifests_removed: l["manifests_removed"].as_u64().unwrap_or(0),
            errors: l["errors"].as_array().into_iter().flatten().map(s).collect(),
        })
    }

    fn reconcile(&self) -> R<ReconcileOut> {
        let v: Value = self.call("POST", "/v1/gc/reconcile", None)?;
        serde_json::from_value(v).map_err(|e| CliError::Other(format!("unexpected answer: {e}")))
    }

    fn snapshot(&self) -> R<SnapshotOut> {
        let v: Value = self.call("POST", "/v1/snapshot", None)?;
        serde_json::from_value(v).map_err(|e| CliError::Other(format!("unexpected answer: {e}")))
    }
}
