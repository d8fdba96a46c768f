//! Signing a sign-off folder: who signed, when, and the SHA-256 of every file it covers
//! (every file of the folder but `signoff.json` and `signoff.html`, which carry the
//! signature), so that a signed document cannot change afterwards without
//! [`verify`] saying which file did.

use super::{SignOff, Signature};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The files a signature does not cover: they hold it.
const UNCOVERED: [&str; 2] = ["signoff.json", "signoff.html"];

/// Why a sign-off folder cannot be signed or verified, or what changed in it.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The folder or its `signoff.json` cannot be read.
    #[error("{0}")]
    Unreadable(String),
    /// `--verify` of a folder nobody signed.
    #[error("{0}: not signed (tether signoff DIR --signed-by NAME signs it)")]
    NotSigned(String),
    /// Files changed, appeared or went since the signature.
    #[error("the signed files changed since {signed_by} signed them: {}", changes.join("; "))]
    Changed {
        /// Who signed.
        signed_by: String,
        /// Each change, in a phrase.
        changes: Vec<String>,
    },
}

/// Read `dir/signoff.json`.
pub fn read(dir: &Path) -> Result<SignOff, SealError> {
    let path = dir.join("signoff.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| SealError::Unreadable(format!("{}: cannot read: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        SealError::Unreadable(format!(
            "{}:{}:{}: not a sign-off: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })
}

/// The digest of every covered file of `dir`, by path relative to it.
pub fn digests(dir: &Path) -> Result<BTreeMap<String, String>, SealError> {
    let mut out = BTreeMap::new();
    for file in files(dir)? {
        let rel = file
            .strip_prefix(dir)
            .unwrap_or(&file)
            .display()
            .to_string();
        if UNCOVERED.contains(&rel.as_str()) {
            continue;
        }
        let bytes = std::fs::read(&file)
            .map_err(|e| SealError::Unreadable(format!("{}: cannot read: {e}", file.display())))?;
        out.insert(rel, hex(&Sha256::digest(&bytes)));
    }
    Ok(out)
}

fn files(dir: &Path) -> Result<Vec<PathBuf>, SealError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| SealError::Unreadable(format!("{}: cannot read: {e}", dir.display())))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sign `signoff` (read from `dir`) as `signed_by`, now: the signature with the digest
/// of every covered file.
pub fn sign(dir: &Path, mut signoff: SignOff, signed_by: &str) -> Result<SignOff, SealError> {
    signoff.signature = None;
    let document = document(&signoff);
    signoff.signature = Some(Signature {
        signed_by: signed_by.to_string(),
        signed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        document,
        digests: digests(dir)?,
    });
    Ok(signoff)
}

/// The digest of `signoff` as JSON, without its signature.
fn document(signoff: &SignOff) -> String {
    let unsigned = SignOff {
        signature: None,
        ..signoff.clone()
    };
    hex(&Sha256::digest(
        serde_json::to_vec(&unsigned).unwrap_or_default(),
    ))
}

/// Check that every file `dir`'s signature covers is as it was signed, and no file
/// was added. The signature, or what changed.
pub fn verify(dir: &Path) -> Result<Signature, SealError> {
    let signoff = read(dir)?;
    let Some(signature) = signoff.signature.clone() else {
        return Err(SealError::NotSigned(dir.display().to_string()));
    };
    let now = digests(dir)?;
    let mut changes = Vec::new();
    if document(&signoff) != signature.document {
        changes.push("signoff.json's verdicts changed".to_string());
    }
    for (file, digest) in &signature.digests {
        match now.get(file) {
            None => changes.push(format!("{file} is gone")),
            Some(d) if d != digest => changes.push(format!("{file} changed")),
            Some(_) => {}
        }
    }
    for file in now.keys().filter(|f| !signature.digests.contains_key(*f)) {
        changes.push(format!("{file} was added"));
    }
    match changes.is_empty() {
        true => Ok(signature),
        false => Err(SealError::Changed {
            signed_by: signature.signed_by,
            changes,
        }),
    }
}
