//! Recording for the contract test: one JSON line per answered request, appended to a file.
//!
//! The file is named by `SimConfig::record` or, when that is unset, by the env var
//! `TD_PZ_SIM_RECORD`. It is opened for appending and each line is written by a single write,
//! so several simulators (processes) can share one file. A line:
//!
//! `{"method": "POST", "path": "<raw path, still percent-encoded>", "query": "<raw query>" | null,
//!   "headers": {"<lowercase name>": "<value>", ...}, "request_body": "<utf-8 lossy text>",
//!   "status": 200, "response_headers": {"content-type": "..."}, "response_body": "<text>" | null,
//!   "endpoint": "p13n" | "p13n_public" | "personalize" | "personalize_test" | "metrics" | "logs" |
//!   "discovery" | "unknown", "fault": true | false}`
//!
//! `headers` holds every request header (repeated ones joined with `, `); `response_headers` the
//! headers the simulator set (not hyper's `content-length`/`date`); `response_body` is null for a
//! streamed fault body; `fault` is true when a scenario fault or `revoked` shaped the answer.
//! `/_sim/*` control requests and requests never answered (`hang`) are not recorded.
//!
//! It records; it never changes an answer, and a failed write is logged, not fatal.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use super::reply::Answer;
use super::routes::SimRequest;

pub const RECORD_ENV: &str = "TD_PZ_SIM_RECORD";

pub(super) struct Recorder {
    path: PathBuf,
    file: File,
}

impl Recorder {
    /// The recorder for `configured`, else for the file `TD_PZ_SIM_RECORD` names, else none.
    pub fn from_config(configured: Option<&Path>) -> io::Result<Option<Recorder>> {
        let env = std::env::var_os(RECORD_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        match configured.map(Path::to_path_buf).or(env) {
            None => Ok(None),
            Some(path) => {
                let file = OpenOptions::new().create(true).append(true).open(&path)?;
                Ok(Some(Recorder { path, file }))
            }
        }
    }

    pub fn write(&self, req: &SimRequest, endpoint: &str, answer: &Answer) {
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in &req.headers {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            headers
                .entry(k.as_str().to_string())
                .and_modify(|old| {
                    old.push_str(", ");
                    old.push_str(&v);
                })
                .or_insert(v);
        }
        let response_headers: BTreeMap<&str, &str> = answer
            .headers
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        let line = json!({
            "method": req.method.as_str(),
            "path": req.raw_path,
            "query": req.raw_query,
            "headers": headers,
            "request_body": String::from_utf8_lossy(&req.body),
            "status": answer.status,
            "response_headers": response_headers,
            "response_body": answer.body_text(),
            "endpoint": endpoint,
            "fault": answer.fault,
        });
        let mut buf = serde_json::to_vec(&line).unwrap_or_default();
        buf.push(b'\n');
        // One write of the whole line: with O_APPEND, lines of several writers do not interleave.
        if let Err(e) = (&self.file).write_all(&buf) {
            tracing::warn!(file = %self.path.display(), error = %e, "cannot record a request");
        }
    }
}
