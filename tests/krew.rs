//! krew distribution: the repo's `krew-manifest.yaml` (the template of krew-index's
//! `plugins/secmon.yaml`) and the manifest `scripts/package.sh` fills in for real archives
//! pass krew's own checks, re-implemented here from `validate-krew-manifest`:
//!
//! 2. structure (`ValidatePlugin`): apiVersion/kind, name = file name and `^[\w-]+$`,
//!    semver version with a leading `v`, one-line shortDescription, per platform `uri`,
//!    lowercase `sha256`, `bin`, `files` and a selector with only `os`/`arch` keys;
//! 3. every platform's selector matches an `<os,arch>` pair krew supports;
//! 4. no supported pair is matched by two platforms (no overlapping selectors);
//!
//! plus the part of check 5 that needs no kubectl: the archive, installed the way krew
//! installs it (`files` operations), yields the `bin` executable and a LICENSE file.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const API_VERSION: &str = "krew.googlecontainertools.github.com/v1alpha2";
const KIND: &str = "Plugin";
const PLUGIN: &str = "secmon";
const BIN: &str = "kubectl-secmon";
/// What the template holds where `scripts/package.sh` writes the archive's sha256.
const SHA256_PLACEHOLDER: &str = "SHA256_PLACEHOLDER";

/// The `<os,arch>` pairs krew supports (`validate-krew-manifest`'s `allPlatforms`).
const SUPPORTED: [(&str, &str); 11] = [
    ("windows", "386"),
    ("windows", "amd64"),
    ("windows", "arm64"),
    ("linux", "386"),
    ("linux", "amd64"),
    ("linux", "arm"),
    ("linux", "arm64"),
    ("linux", "ppc64le"),
    ("darwin", "386"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
];

/// Plugin names krew rejects (Windows device names, compared case-insensitively).
const WINDOWS_FORBIDDEN: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// File names (lowercased) `validate-krew-manifest` accepts as the license after install.
const LICENSE_FILES: [&str; 8] = [
    "license",
    "license.txt",
    "license.md",
    "licenses",
    "licenses.txt",
    "licenses.md",
    "copying",
    "copying.txt",
];

/// The release targets and the krew platform each one is for.
const RELEASE_TARGETS: [(&str, &str, &str); 4] = [
    ("x86_64-unknown-linux-musl", "linux", "amd64"),
    ("aarch64-unknown-linux-musl", "linux", "arm64"),
    ("x86_64-apple-darwin", "darwin", "amd64"),
    ("aarch64-apple-darwin", "darwin", "arm64"),
];

// ---------------------------------------------------------------------------------------
// The validator
// ---------------------------------------------------------------------------------------

/// Whether `sha256` may still hold the template's placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// `krew-manifest.yaml`: `sha256` is the placeholder or a real digest.
    Template,
    /// A manifest for krew-index: every `sha256` is a real lowercase digest.
    Release,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Debug, Clone)]
struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

/// A platform's label selector, as `metav1.LabelSelectorAsSelector` would build it.
#[derive(Debug, Clone, Default)]
struct Selector {
    match_labels: Vec<(String, String)>,
    match_expressions: Vec<Requirement>,
}

impl Selector {
    /// Whether the selector selects the label set `{os, arch}` (all requirements ANDed).
    fn matches(&self, os: &str, arch: &str) -> bool {
        let label = |key: &str| match key {
            "os" => Some(os),
            "arch" => Some(arch),
            _ => None,
        };
        let labels_ok = self
            .match_labels
            .iter()
            .all(|(k, v)| label(k) == Some(v.as_str()));
        let exprs_ok = self.match_expressions.iter().all(|r| {
            let value = label(&r.key);
            match r.operator {
                Operator::In => value.is_some_and(|v| r.values.iter().any(|x| x == v)),
                Operator::NotIn => value.is_none_or(|v| r.values.iter().all(|x| x != v)),
                Operator::Exists => value.is_some(),
                Operator::DoesNotExist => value.is_none(),
            }
        });
        labels_ok && exprs_ok
    }
}

#[derive(Debug, Clone)]
struct FileOperation {
    from: String,
    to: String,
}

#[derive(Debug, Clone)]
struct Platform {
    selector: Selector,
    uri: String,
    sha256: String,
    bin: String,
    /// `None` when `files` is absent: krew then extracts everything (`*` → `.`).
    files: Option<Vec<FileOperation>>,
    /// The supported `<os,arch>` pairs this platform's selector selects.
    selects: Vec<(&'static str, &'static str)>,
}

#[derive(Debug, Clone)]
struct Plugin {
    version: String,
    homepage: Option<String>,
    short_description: String,
    description: String,
    caveats: String,
    platforms: Vec<Platform>,
}

/// Validate the manifest `text` stored as the file `file_name` (e.g. `secmon.yaml`), the
/// way `validate-krew-manifest -skip-install` does; every problem found is reported.
fn validate_manifest(file_name: &str, text: &str, stage: Stage) -> Result<Plugin, Vec<String>> {
    let value = serde_saphyr::from_str::<Value>(text)
        .map_err(|e| vec![format!("{file_name}: not valid YAML: {e}")])?;
    validate_value(file_name, &value, stage)
}

fn validate_value(file_name: &str, doc: &Value, stage: Stage) -> Result<Plugin, Vec<String>> {
    let mut errors = Vec::new();

    // Check 1: the plugin name comes from the file name.
    let name = match file_name.strip_suffix(".yaml") {
        Some(stem) => stem,
        None => {
            errors.push(format!(
                "expected manifest extension \".yaml\" in file name {file_name:?}"
            ));
            file_name
        }
    };

    // Check 2: ValidatePlugin.
    let get_str = |v: &Value, path: &[&str]| -> Option<String> {
        path.iter()
            .try_fold(v, |v, k| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if !doc.is_object() {
        return Err(vec![format!("{file_name}: the manifest is not a mapping")]);
    }
    let api_version = get_str(doc, &["apiVersion"]).unwrap_or_default();
    if api_version != API_VERSION {
        errors.push(format!(
            "plugin manifest has apiVersion={api_version:?}, only {API_VERSION:?} is supported"
        ));
    }
    let kind = get_str(doc, &["kind"]).unwrap_or_default();
    if kind != KIND {
        errors.push(format!(
            "plugin manifest has kind={kind:?}, but only {KIND:?} is supported"
        ));
    }
    if !is_safe_plugin_name(name) {
        errors.push(format!(
            "the plugin name {name:?} is not allowed, must match \"^[\\w-]+$\" and not be a Windows device name"
        ));
    }
    let meta_name = get_str(doc, &["metadata", "name"]).unwrap_or_default();
    if meta_name != name {
        errors.push(format!(
            "plugin should be named {name:?}, not {meta_name:?}"
        ));
    }
    let short_description = get_str(doc, &["spec", "shortDescription"]).unwrap_or_default();
    if short_description.is_empty() {
        errors.push("should have a short description".to_owned());
    }
    if short_description.contains(['\r', '\n']) {
        errors.push("should not have line breaks in short description".to_owned());
    }
    let version = get_str(doc, &["spec", "version"]).unwrap_or_default();
    if version.is_empty() {
        errors.push("should have a version specified".to_owned());
    } else if let Err(e) = parse_version(&version) {
        errors.push(format!("failed to parse plugin version: {e}"));
    }

    let raw_platforms = doc
        .get("spec")
        .and_then(|s| s.get("platforms"))
        .and_then(Value::as_array);
    let raw_platforms = match raw_platforms {
        Some(p) if !p.is_empty() => p.as_slice(),
        _ => {
            errors.push("should have a platform specified".to_owned());
            &[]
        }
    };
    let mut platforms = Vec::new();
    for (i, raw) in raw_platforms.iter().enumerate() {
        match validate_platform(raw, stage) {
            Ok(p) => platforms.push(p),
            Err(e) => errors.push(format!("spec.platforms[{i}] is badly constructed: {e}")),
        }
    }

    // Check 3: every platform selects some supported <os,arch>.
    for (i, p) in platforms.iter().enumerate() {
        if p.selects.is_empty() {
            errors.push(format!(
                "spec.platforms[{i}]'s selector ({:?}) doesn't match any supported platforms",
                p.selector
            ));
        }
        if p.selects.iter().any(|(os, _)| *os == "windows") && !p.bin.ends_with(".exe") {
            errors.push(format!(
                "spec.platforms[{i}] selects windows but bin {:?} does not end in .exe",
                p.bin
            ));
        }
    }

    // Check 4: no supported <os,arch> is selected by two platforms.
    for (os, arch) in SUPPORTED {
        let idx: Vec<usize> = platforms
            .iter()
            .enumerate()
            .filter(|(_, p)| p.selects.contains(&(os, arch)))
            .map(|(i, _)| i)
            .collect();
        if idx.len() > 1 {
            errors.push(format!(
                "overlapping platform selectors: spec.platforms (at indexes {idx:?}) all select os={os}/arch={arch}"
            ));
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Plugin {
        version,
        homepage: get_str(doc, &["spec", "homepage"]),
        short_description,
        description: get_str(doc, &["spec", "description"]).unwrap_or_default(),
        caveats: get_str(doc, &["spec", "caveats"]).unwrap_or_default(),
        platforms,
    })
}

/// `^[\w-]+$` (Go's `\w` is ASCII) and not a Windows device name.
fn is_safe_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !WINDOWS_FORBIDDEN
            .iter()
            .any(|f| f.eq_ignore_ascii_case(name))
}

/// krew's `semver.Parse`: a leading `v`, then `MAJOR.MINOR.PATCH` without leading zeros,
/// optional `-pre.release` and `+build` identifiers.
fn parse_version(s: &str) -> Result<(), String> {
    let rest = s
        .strip_prefix('v')
        .ok_or_else(|| format!("version string {s:?} not starting with 'v'"))?;
    let (rest, build) = match rest.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (rest, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 {
        return Err(format!("{s:?}: expected MAJOR.MINOR.PATCH"));
    }
    for p in parts {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{s:?}: version component {p:?} is not a number"));
        }
        if p.len() > 1 && p.starts_with('0') {
            return Err(format!(
                "{s:?}: illegal zero-prefixed version component {p:?}"
            ));
        }
    }
    let ident_ok =
        |id: &str| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if let Some(pre) = pre {
        for id in pre.split('.') {
            let numeric = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
            if !ident_ok(id) || (numeric && id.len() > 1 && id.starts_with('0')) {
                return Err(format!("{s:?}: invalid pre-release identifier {id:?}"));
            }
        }
    }
    if let Some(build) = build
        && !build.split('.').all(ident_ok)
    {
        return Err(format!("{s:?}: invalid build metadata {build:?}"));
    }
    Ok(())
}

fn is_lower_hex_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// krew's `validatePlatform`, plus the archive-type rule on `uri`.
fn validate_platform(raw: &Value, stage: Stage) -> Result<Platform, String> {
    let field = |k: &str| raw.get(k).and_then(Value::as_str).unwrap_or_default();
    let uri = field("uri");
    if uri.is_empty() {
        return Err("`uri` has to be set".to_owned());
    }
    if !(uri.ends_with(".tar.gz") || uri.ends_with(".zip")) {
        return Err(format!("`uri` {uri:?} must end in .tar.gz or .zip"));
    }
    let sha256 = field("sha256");
    if sha256.is_empty() {
        return Err("`sha256` sum has to be set".to_owned());
    }
    let placeholder_ok = stage == Stage::Template && sha256 == SHA256_PLACEHOLDER;
    if !placeholder_ok && !is_lower_hex_sha256(sha256) {
        return Err(format!(
            "`sha256` value {sha256} is not valid, must match pattern ^[a-f0-9]{{64}}$"
        ));
    }
    let bin = field("bin");
    if bin.is_empty() {
        return Err("`bin` has to be set".to_owned());
    }
    let files = match raw.get("files") {
        None | Some(Value::Null) => None,
        Some(Value::Array(ops)) if ops.is_empty() => {
            return Err("`files` has to be unspecified or non-empty".to_owned());
        }
        Some(Value::Array(ops)) => {
            let mut out = Vec::new();
            for op in ops {
                let from = op.get("from").and_then(Value::as_str).unwrap_or_default();
                let to = op.get("to").and_then(Value::as_str).unwrap_or_default();
                if from.is_empty() {
                    return Err("`files`: `from` field has to be set".to_owned());
                }
                if to.is_empty() {
                    return Err("`files`: `to` field has to be set".to_owned());
                }
                out.push(FileOperation {
                    from: from.to_owned(),
                    to: to.to_owned(),
                });
            }
            Some(out)
        }
        Some(other) => return Err(format!("`files` must be a list, not {other}")),
    };
    let selector = parse_selector(raw.get("selector"))
        .map_err(|e| format!("invalid platform selector: {e}"))?;
    let selects = SUPPORTED
        .iter()
        .copied()
        .filter(|(os, arch)| selector.matches(os, arch))
        .collect();
    Ok(Platform {
        selector,
        uri: uri.to_owned(),
        sha256: sha256.to_owned(),
        bin: bin.to_owned(),
        files,
        selects,
    })
}

/// krew's `validateSelector` and the conversion rules of `LabelSelectorAsSelector`.
fn parse_selector(raw: Option<&Value>) -> Result<Selector, String> {
    let raw = match raw {
        None | Some(Value::Null) => return Err("nil selector is not supported".to_owned()),
        Some(Value::Object(m)) => m,
        Some(other) => return Err(format!("selector must be a mapping, not {other}")),
    };
    let check_key = |k: &str| {
        if k == "os" || k == "arch" {
            Ok(())
        } else {
            Err(format!("key {k:?} not supported"))
        }
    };
    let mut sel = Selector::default();
    for key in raw.keys() {
        if key != "matchLabels" && key != "matchExpressions" {
            return Err(format!("unknown selector field {key:?}"));
        }
    }
    let labels = match raw.get("matchLabels") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(other) => return Err(format!("`matchLabels` must be a mapping, not {other}")),
    };
    let exprs = match raw.get("matchExpressions") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(a),
        Some(other) => return Err(format!("`matchExpressions` must be a list, not {other}")),
    };
    if labels.is_none() && exprs.is_none_or(|e| e.is_empty()) {
        return Err("empty selector is not supported".to_owned());
    }
    if let Some(labels) = labels {
        if labels.is_empty() {
            return Err("`matchLabels` specified but empty".to_owned());
        }
        for (k, v) in labels {
            check_key(k)?;
            let v = v
                .as_str()
                .ok_or_else(|| format!("matchLabels.{k} must be a string (quote it), not {v}"))?;
            sel.match_labels.push((k.clone(), v.to_owned()));
        }
    }
    if let Some(exprs) = exprs {
        if exprs.is_empty() {
            return Err("`matchExpressions` specified but empty".to_owned());
        }
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
            check_key(key)?;
            let operator = match e.get("operator").and_then(Value::as_str) {
                Some("In") => Operator::In,
                Some("NotIn") => Operator::NotIn,
                Some("Exists") => Operator::Exists,
                Some("DoesNotExist") => Operator::DoesNotExist,
                other => return Err(format!("{other:?} is not a valid label selector operator")),
            };
            let values: Vec<String> = match e.get("values") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(vs)) => vs
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| format!("values of {key:?} must be strings, not {v}"))
                    })
                    .collect::<Result<_, _>>()?,
                Some(other) => return Err(format!("`values` must be a list, not {other}")),
            };
            let needs_values = matches!(operator, Operator::In | Operator::NotIn);
            if needs_values == values.is_empty() {
                return Err(format!(
                    "{operator:?} on {key:?}: values must be {}",
                    if needs_values { "non-empty" } else { "empty" }
                ));
            }
            sel.match_expressions.push(Requirement {
                key: key.to_owned(),
                operator,
                values,
            });
        }
    }
    Ok(sel)
}

// ---------------------------------------------------------------------------------------
// The archive, installed the way krew installs it
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum EntryKind {
    File,
    Dir,
    Other,
}

#[derive(Debug, Clone)]
struct Entry {
    kind: EntryKind,
    mode: u32,
    size: u64,
    /// For a file named in `read_tar_gz`'s `sources`: whether its content equals the source.
    same_as_source: Option<bool>,
}

/// The tree a `.tar.gz` extracts to: clean relative paths → entries (directories that are
/// only implied by their files' paths included). Files named in `sources` are compared
/// byte for byte with the given file.
fn read_tar_gz(
    path: &Path,
    sources: &BTreeMap<&str, &Path>,
) -> Result<BTreeMap<String, Entry>, String> {
    let file = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut tree = BTreeMap::new();
    let entries = archive
        .entries()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("{}: {e}", path.display()))?;
        let raw = entry
            .path()
            .map_err(|e| format!("{}: {e}", path.display()))?
            .to_string_lossy()
            .into_owned();
        if raw.starts_with('/') || raw.split('/').any(|c| c == "..") {
            return Err(format!("{}: unsafe path {raw:?}", path.display()));
        }
        let name = clean(&raw);
        if name == "." {
            continue;
        }
        let header = entry.header();
        let mode = header.mode().map_err(|e| format!("{raw}: {e}"))?;
        let ty = header.entry_type();
        let (kind, same_as_source) = if ty.is_file() {
            let same = match sources.get(name.as_str()) {
                Some(src) => {
                    let f = fs::File::open(src).map_err(|e| format!("{}: {e}", src.display()))?;
                    Some(same_content(&mut entry, f).map_err(|e| format!("{raw}: {e}"))?)
                }
                None => None,
            };
            (EntryKind::File, same)
        } else if ty.is_dir() {
            (EntryKind::Dir, None)
        } else {
            (EntryKind::Other, None)
        };
        let mut parent = name.as_str();
        while let Some((p, _)) = parent.rsplit_once('/') {
            tree.entry(p.to_owned()).or_insert(Entry {
                kind: EntryKind::Dir,
                mode: 0o755,
                size: 0,
                same_as_source: None,
            });
            parent = p;
        }
        let size = entry.size();
        tree.insert(
            name,
            Entry {
                kind,
                mode,
                size,
                same_as_source,
            },
        );
    }
    Ok(tree)
}

/// Whether two streams hold the same bytes (a chunked comparison, much cheaper than
/// hashing in an unoptimized test build).
fn same_content(mut a: impl Read, mut b: impl Read) -> std::io::Result<bool> {
    let mut buf_a = vec![0u8; 1 << 20];
    let mut buf_b = vec![0u8; 1 << 20];
    loop {
        let n = read_full(&mut a, &mut buf_a)?;
        let m = read_full(&mut b, &mut buf_b)?;
        if n != m || buf_a[..n] != buf_b[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Read until `buf` is full or the stream ends; the number of bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_file(path: &Path) -> String {
    let mut f = fs::File::open(path).unwrap();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hex(&hasher.finalize())
}

/// Go's `path.Clean` for relative slash paths.
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." if out.last().is_some_and(|l| *l != "..") => {
                out.pop();
            }
            _ => out.push(c),
        }
    }
    let joined = out.join("/");
    match (p.starts_with('/'), joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

fn base(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// `filepath.Match` for one path component, with `*` and `?` (classes are not needed
/// by this project's manifests and are refused rather than guessed).
fn glob_component(pattern: &[u8], name: &[u8]) -> Result<bool, String> {
    match pattern.split_first() {
        None => Ok(name.is_empty()),
        Some((b'*', rest)) => {
            for i in 0..=name.len() {
                if glob_component(rest, &name[i..])? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Some((b'?', rest)) => match name.split_first() {
            Some((_, n)) => glob_component(rest, n),
            None => Ok(false),
        },
        Some((b'[' | b'\\', _)) => Err("glob classes and escapes are not supported".to_owned()),
        Some((c, rest)) => match name.split_first() {
            Some((n, name_rest)) if n == c => glob_component(rest, name_rest),
            _ => Ok(false),
        },
    }
}

fn glob_matches(pattern: &str, path: &str) -> Result<bool, String> {
    let pc: Vec<&str> = pattern.split('/').collect();
    let nc: Vec<&str> = path.split('/').collect();
    if pc.len() != nc.len() {
        return Ok(false);
    }
    for (p, n) in pc.iter().zip(&nc) {
        if !glob_component(p.as_bytes(), n.as_bytes())? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Move `src` (and, for a directory, everything below it) from the extracted tree to
/// `dest` in the install tree.
fn move_tree(
    extracted: &mut BTreeMap<String, Entry>,
    installed: &mut BTreeMap<String, Entry>,
    src: &str,
    dest: &str,
) {
    let prefix = format!("{src}/");
    let moving: Vec<String> = extracted
        .keys()
        .filter(|k| *k == src || k.starts_with(&prefix))
        .cloned()
        .collect();
    for k in moving {
        if let Some(e) = extracted.remove(&k) {
            let rel = &k[src.len()..];
            installed.insert(format!("{dest}{rel}"), e);
        }
    }
}

/// krew's `moveToInstallDir`: the install tree the platform's `files` operations build.
fn install_tree(
    mut extracted: BTreeMap<String, Entry>,
    platform: &Platform,
) -> Result<BTreeMap<String, Entry>, String> {
    let default_ops = [FileOperation {
        from: "*".to_owned(),
        to: ".".to_owned(),
    }];
    let ops = platform.files.as_deref().unwrap_or(&default_ops);
    let mut installed = BTreeMap::new();
    for op in ops {
        let to = clean(&op.to);
        if to != op.to {
            return Err(format!(
                "the provided path is not clean, {:?} should be {to:?}",
                op.to
            ));
        }
        if to.starts_with('/') || to == ".." || to.starts_with("../") {
            return Err(format!("`to` {to:?} is outside the install directory"));
        }
        let from = clean(&op.from);
        if from.starts_with('/') || from == ".." || from.starts_with("../") {
            return Err(format!("`from` {from:?} is outside the archive"));
        }
        // A path that exists is moved directly; anything else is a glob.
        if extracted.contains_key(&from) {
            let dest = if to == "." {
                base(&from).to_owned()
            } else {
                to
            };
            move_tree(&mut extracted, &mut installed, &from, &dest);
            continue;
        }
        let mut matched = Vec::new();
        for k in extracted.keys() {
            if glob_matches(&from, k)? {
                matched.push(k.clone());
            }
        }
        if matched.is_empty() {
            return Err(format!(
                "no files in the plugin archive matched the glob pattern={}",
                op.from
            ));
        }
        for m in matched {
            let dest = clean(&format!("{to}/{}", base(&m)));
            move_tree(&mut extracted, &mut installed, &m, &dest);
        }
    }
    Ok(installed)
}

/// The installed plugin has its `bin` as an executable file and a license file.
fn check_installed(installed: &BTreeMap<String, Entry>, platform: &Platform) -> Vec<String> {
    let mut errors = Vec::new();
    let bin = clean(&platform.bin);
    match installed.get(&bin) {
        Some(e) if e.kind == EntryKind::File && e.mode & 0o111 != 0 => {}
        Some(e) if e.kind == EntryKind::File => {
            errors.push(format!(
                "bin {bin:?} is installed without execute permission"
            ));
        }
        _ => errors.push(format!(
            "bin {bin:?} is not among the installed files {:?}",
            installed.keys().collect::<Vec<_>>()
        )),
    }
    let has_license = installed.iter().any(|(p, e)| {
        e.kind == EntryKind::File && LICENSE_FILES.contains(&base(p).to_ascii_lowercase().as_str())
    });
    if !has_license {
        errors.push(format!(
            "LICENSE (or alike) file is not extracted from the archive as part of installation: {:?}",
            installed.keys().collect::<Vec<_>>()
        ));
    }
    errors
}

// ---------------------------------------------------------------------------------------
// Helpers for the tests
// ---------------------------------------------------------------------------------------

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn version() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

fn template_text() -> String {
    fs::read_to_string(repo().join("krew-manifest.yaml")).unwrap()
}

fn template_value() -> Value {
    serde_saphyr::from_str::<Value>(&template_text()).unwrap()
}

fn release_uri(version: &str, target: &str) -> String {
    format!(
        "https://github.com/kubectl-secmon/kubectl-secmon/releases/download/{version}/kubectl-secmon-{version}-{target}.tar.gz"
    )
}

fn run_package(args: &[&str]) -> Output {
    let out = Command::new("bash")
        .arg(repo().join("scripts/package.sh"))
        .args(args)
        .output()
        .expect("run scripts/package.sh with bash");
    eprintln!(
        "package.sh {args:?}: {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A release-ready manifest for negative tests: the template with real digests.
fn filled_value() -> Value {
    let mut v = template_value();
    for (i, p) in v["spec"]["platforms"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        p["sha256"] = json!(format!("{i:x}").repeat(64));
    }
    v
}

fn assert_rejected(v: &Value, stage: Stage, needle: &str) {
    match validate_value("secmon.yaml", v, stage) {
        Ok(_) => panic!("accepted a manifest that should fail with {needle:?}"),
        Err(errors) => assert!(
            errors.iter().any(|e| e.contains(needle)),
            "expected an error containing {needle:?}, got {errors:#?}"
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn template_passes_krew_validation() {
    // The repo file is the template of krew-index's plugins/secmon.yaml.
    let plugin = validate_manifest("secmon.yaml", &template_text(), Stage::Template)
        .unwrap_or_else(|e| panic!("krew-manifest.yaml: {e:#?}"));

    assert_eq!(plugin.version, version(), "spec.version follows Cargo.toml");
    assert_eq!(
        plugin.homepage.as_deref(),
        Some(env!("CARGO_PKG_REPOSITORY"))
    );
    assert!(!plugin.short_description.trim().is_empty());
    for needle in [
        "Pod Security",
        "CIS Kubernetes Benchmark",
        "Falco",
        "eBPF",
        "Prometheus",
        "simulation",
    ] {
        assert!(
            plugin.description.contains(needle),
            "description lacks {needle:?}"
        );
    }
    for needle in [
        "kubectl secmon completion install",
        "kubectl_complete-secmon",
        "cluster-admin",
    ] {
        assert!(plugin.caveats.contains(needle), "caveats lack {needle:?}");
    }

    assert_eq!(plugin.platforms.len(), RELEASE_TARGETS.len());
    for (target, os, arch) in RELEASE_TARGETS {
        let matching: Vec<&Platform> = plugin
            .platforms
            .iter()
            .filter(|p| p.selects == [(os, arch)])
            .collect();
        assert_eq!(matching.len(), 1, "exactly one platform for {os}/{arch}");
        let p = matching[0];
        assert_eq!(p.uri, release_uri(&version(), target), "{os}/{arch}");
        assert_eq!(p.bin, format!("./{BIN}"));
        assert!(
            p.sha256 == SHA256_PLACEHOLDER || is_lower_hex_sha256(&p.sha256),
            "{os}/{arch}: sha256 {:?}",
            p.sha256
        );
        // The selector is the plain {os, arch} form.
        let mut labels = p.selector.match_labels.clone();
        labels.sort();
        assert_eq!(
            labels,
            [
                ("arch".to_owned(), arch.to_owned()),
                ("os".to_owned(), os.to_owned())
            ]
        );
        let froms: Vec<&str> = p
            .files
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|f| f.from.as_str())
            .collect();
        assert!(
            froms.contains(&BIN) && froms.contains(&"LICENSE"),
            "files: {froms:?}"
        );
    }
}

#[test]
fn template_placeholder_is_not_a_release_manifest() {
    // Only the filled manifest may go to krew-index.
    assert_rejected(
        &template_value(),
        Stage::Release,
        "is not valid, must match",
    );
}

#[test]
fn license_is_the_apache_2_text() {
    let license = fs::read_to_string(repo().join("LICENSE")).unwrap();
    assert!(license.contains("Apache License"));
    assert!(license.contains("Version 2.0, January 2004"));
    assert!(license.contains("END OF TERMS AND CONDITIONS"));
    assert_eq!(env!("CARGO_PKG_LICENSE"), "Apache-2.0");
}

#[test]
fn package_script_fills_a_valid_manifest_for_real_archives() {
    let exe = env!("CARGO_BIN_EXE_kubectl-secmon");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dist");
    let version = version();
    let mut args = vec![
        version.clone(),
        "--out".to_owned(),
        out.display().to_string(),
    ];
    for (target, _, _) in RELEASE_TARGETS {
        args.push("--target".to_owned());
        args.push(format!("{target}={exe}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = run_package(&args);
    assert!(run.status.success(), "package.sh failed");

    let manifest_path = out.join(format!("{PLUGIN}.yaml"));
    let text = fs::read_to_string(&manifest_path).unwrap();
    let file_name = manifest_path.file_name().unwrap().to_str().unwrap();
    let plugin = validate_manifest(file_name, &text, Stage::Release)
        .unwrap_or_else(|e| panic!("{}: {e:#?}", manifest_path.display()));
    assert_eq!(plugin.version, version);

    // Apart from the digests, the filled manifest is the template.
    let mut filled = serde_saphyr::from_str::<Value>(&text).unwrap();
    let mut template = template_value();
    for v in [&mut filled, &mut template] {
        for p in v["spec"]["platforms"].as_array_mut().unwrap() {
            p.as_object_mut().unwrap().remove("sha256");
        }
    }
    assert_eq!(
        filled, template,
        "package.sh changed more than the sha256 values"
    );

    let license = repo().join("LICENSE");
    let sources: BTreeMap<&str, &Path> = [(BIN, Path::new(exe)), ("LICENSE", license.as_path())]
        .into_iter()
        .collect();
    let exe_size = fs::metadata(exe).unwrap().len();
    // The same binary went into every archive here, so the archives are byte-identical:
    // each archive is hashed (or found equal to one already hashed) and inspected once.
    let mut hashed: Vec<(PathBuf, String)> = Vec::new();
    let mut inspected: BTreeMap<String, BTreeMap<String, Entry>> = BTreeMap::new();
    assert_eq!(plugin.platforms.len(), RELEASE_TARGETS.len());
    for p in &plugin.platforms {
        let archive = out.join(base(&p.uri));
        assert!(archive.is_file(), "{} missing", archive.display());
        let known = hashed.iter().find(|(other, _)| {
            same_content(
                fs::File::open(other).unwrap(),
                fs::File::open(&archive).unwrap(),
            )
            .unwrap()
        });
        let actual = match known {
            Some((_, sha)) => sha.clone(),
            None => sha256_file(&archive),
        };
        hashed.push((archive.clone(), actual.clone()));
        assert!(is_lower_hex_sha256(&p.sha256));
        assert_eq!(
            p.sha256,
            actual,
            "sha256 in the manifest vs {}",
            archive.display()
        );

        if !inspected.contains_key(&actual) {
            let tree = read_tar_gz(&archive, &sources).unwrap();
            inspected.insert(actual.clone(), tree);
        }
        let tree = inspected[&actual].clone();
        // Exactly the binary and LICENSE, at the archive root.
        assert_eq!(
            tree.keys().map(String::as_str).collect::<Vec<_>>(),
            ["LICENSE", BIN],
            "{}",
            archive.display()
        );
        assert_eq!(tree[BIN].size, exe_size);
        assert_eq!(
            tree[BIN].same_as_source,
            Some(true),
            "{BIN} is the built binary"
        );
        assert_eq!(
            tree["LICENSE"].same_as_source,
            Some(true),
            "LICENSE is the repo's"
        );

        let installed = install_tree(tree, p).unwrap();
        let problems = check_installed(&installed, p);
        assert!(problems.is_empty(), "{}: {problems:#?}", archive.display());
    }
}

#[test]
fn package_script_requires_every_platform_unless_allowed() {
    // A stand-in executable keeps this test fast; the real binary is covered above.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("kubectl-secmon");
    fs::write(&fake, "#!/bin/sh\necho fake\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = dir.path().join("dist");
    let version = version();
    let target = format!("x86_64-unknown-linux-musl={}", fake.display());
    let out_s = out.display().to_string();

    let run = run_package(&[&version, "--out", &out_s, "--target", &target]);
    assert!(!run.status.success(), "a missing platform must fail");
    let stderr = String::from_utf8_lossy(&run.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one-line message: {stderr}");
    for missing in [
        "aarch64-unknown-linux-musl",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
    ] {
        assert!(lines[0].contains(missing), "{stderr}");
    }
    assert!(lines[0].contains("--allow-missing"), "{stderr}");
    assert!(!out.join(format!("{PLUGIN}.yaml")).exists());

    // --allow-missing: a manifest with only the built platform, still valid for krew.
    let run = run_package(&[
        &version,
        "--out",
        &out_s,
        "--target",
        &target,
        "--allow-missing",
    ]);
    assert!(run.status.success());
    let text = fs::read_to_string(out.join(format!("{PLUGIN}.yaml"))).unwrap();
    let plugin = validate_manifest("secmon.yaml", &text, Stage::Release)
        .unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(plugin.platforms.len(), 1);
    let p = &plugin.platforms[0];
    assert_eq!(p.selects, [("linux", "amd64")]);
    assert_eq!(p.uri, release_uri(&version, "x86_64-unknown-linux-musl"));
    let archive = out.join(base(&p.uri));
    assert_eq!(p.sha256, sha256_file(&archive));
    let installed = install_tree(read_tar_gz(&archive, &BTreeMap::new()).unwrap(), p).unwrap();
    assert!(check_installed(&installed, p).is_empty());

    // --dist: the archives made above are picked up again, into another directory.
    let out2 = dir.path().join("dist2");
    let out2_s = out2.display().to_string();
    let run = run_package(&[
        &version,
        "--dist",
        &out_s,
        "--out",
        &out2_s,
        "--allow-missing",
    ]);
    assert!(run.status.success());
    let text2 = fs::read_to_string(out2.join(format!("{PLUGIN}.yaml"))).unwrap();
    assert_eq!(text, text2);
    assert!(out2.join(base(&p.uri)).is_file());
}

#[test]
fn validator_rejects_overlapping_selectors() {
    let mut v = filled_value();
    // A second platform that also selects linux/amd64 (and linux/arm64).
    let mut extra = v["spec"]["platforms"][0].clone();
    extra["selector"] = json!({
        "matchExpressions": [
            {"key": "os", "operator": "In", "values": ["linux"]},
            {"key": "arch", "operator": "NotIn", "values": ["386", "arm", "ppc64le"]}
        ]
    });
    v["spec"]["platforms"].as_array_mut().unwrap().push(extra);
    assert_rejected(&v, Stage::Release, "overlapping platform selectors");

    // The same overlap written with matchLabels only.
    let mut v = filled_value();
    v["spec"]["platforms"][1]["selector"] =
        json!({"matchLabels": {"os": "linux", "arch": "amd64"}});
    assert_rejected(&v, Stage::Release, "os=linux/arch=amd64");

    // A selector on os alone overlaps each of the per-arch darwin entries.
    let mut v = filled_value();
    v["spec"]["platforms"][0]["selector"] = json!({"matchLabels": {"os": "darwin"}});
    assert_rejected(&v, Stage::Release, "overlapping platform selectors");
}

#[test]
fn validator_rejects_uppercase_sha256() {
    let mut v = filled_value();
    v["spec"]["platforms"][2]["sha256"] = json!("AB".repeat(32));
    assert_rejected(&v, Stage::Release, "must match pattern ^[a-f0-9]{64}$");
    // The template stage allows the placeholder only, not bad digests.
    assert_rejected(&v, Stage::Template, "must match pattern ^[a-f0-9]{64}$");
    // And through YAML text, as a reviewer would write it.
    let text = template_text().replacen(
        &format!("sha256: {SHA256_PLACEHOLDER}"),
        &format!("sha256: {}", "A".repeat(64)),
        1,
    );
    let errors = validate_manifest("secmon.yaml", &text, Stage::Template).unwrap_err();
    assert!(
        errors.iter().any(|e| e.contains("is not valid")),
        "{errors:#?}"
    );
}

#[test]
fn validator_rejects_other_krew_rule_violations() {
    assert!(validate_value("secmon.yaml", &filled_value(), Stage::Release).is_ok());

    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "apiVersion",
            Box::new(|v| v["apiVersion"] = json!("krew.googlecontainertools.github.com/v1alpha1")),
            "apiVersion",
        ),
        ("kind", Box::new(|v| v["kind"] = json!("Plugins")), "kind="),
        (
            "name",
            Box::new(|v| v["metadata"]["name"] = json!("sec-mon")),
            "plugin should be named \"secmon\"",
        ),
        (
            "version v",
            Box::new(|v| v["spec"]["version"] = json!("0.1.0")),
            "not starting with 'v'",
        ),
        (
            "version semver",
            Box::new(|v| v["spec"]["version"] = json!("v0.1")),
            "MAJOR.MINOR.PATCH",
        ),
        (
            "version zero",
            Box::new(|v| v["spec"]["version"] = json!("v01.0.0")),
            "zero-prefixed",
        ),
        (
            "short description",
            Box::new(|v| v["spec"]["shortDescription"] = json!("two\nlines")),
            "line breaks",
        ),
        (
            "no short description",
            Box::new(|v| {
                v["spec"]
                    .as_object_mut()
                    .unwrap()
                    .remove("shortDescription");
            }),
            "short description",
        ),
        (
            "no platforms",
            Box::new(|v| v["spec"]["platforms"] = json!([])),
            "should have a platform",
        ),
        (
            "uri",
            Box::new(|v| {
                v["spec"]["platforms"][0]["uri"] = json!("https://example.com/kubectl-secmon")
            }),
            ".tar.gz or .zip",
        ),
        (
            "bin",
            Box::new(|v| {
                v["spec"]["platforms"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("bin");
            }),
            "`bin` has to be set",
        ),
        (
            "empty files",
            Box::new(|v| v["spec"]["platforms"][0]["files"] = json!([])),
            "unspecified or non-empty",
        ),
        (
            "files to",
            Box::new(|v| v["spec"]["platforms"][0]["files"][0]["to"] = json!("")),
            "`to` field",
        ),
        (
            "nil selector",
            Box::new(|v| {
                v["spec"]["platforms"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("selector");
            }),
            "nil selector",
        ),
        (
            "empty selector",
            Box::new(|v| v["spec"]["platforms"][0]["selector"] = json!({})),
            "empty selector",
        ),
        (
            "empty matchLabels",
            Box::new(|v| v["spec"]["platforms"][0]["selector"] = json!({"matchLabels": {}})),
            "`matchLabels` specified but empty",
        ),
        (
            "selector key",
            Box::new(|v| {
                v["spec"]["platforms"][0]["selector"]["matchLabels"]["libc"] = json!("musl")
            }),
            "key \"libc\" not supported",
        ),
        (
            "unsupported pair",
            Box::new(|v| {
                v["spec"]["platforms"][0]["selector"]["matchLabels"]["os"] = json!("freebsd")
            }),
            "doesn't match any supported platforms",
        ),
        (
            "numeric label",
            Box::new(|v| v["spec"]["platforms"][0]["selector"]["matchLabels"]["arch"] = json!(386)),
            "must be a string",
        ),
        (
            "windows bin",
            Box::new(|v| {
                v["spec"]["platforms"][0]["selector"]["matchLabels"]["os"] = json!("windows")
            }),
            "does not end in .exe",
        ),
    ];
    for (what, mutate, needle) in cases {
        let mut v = filled_value();
        mutate(&mut v);
        match validate_value("secmon.yaml", &v, Stage::Release) {
            Ok(_) => panic!("{what}: accepted"),
            Err(errors) => assert!(
                errors.iter().any(|e| e.contains(needle)),
                "{what}: expected {needle:?} in {errors:#?}"
            ),
        }
    }

    // The name comes from the file name, which must be a .yaml file with a safe name.
    let v = filled_value();
    assert_rejected_as(&v, "kubectl-secmon.yaml", "plugin should be named");
    assert_rejected_as(&v, "secmon.yml", "expected manifest extension");
    let mut con = filled_value();
    con["metadata"]["name"] = json!("con");
    assert_rejected_as(&con, "con.yaml", "is not allowed");
    let mut bad = filled_value();
    bad["metadata"]["name"] = json!("sec mon");
    assert_rejected_as(&bad, "sec mon.yaml", "is not allowed");
}

fn assert_rejected_as(v: &Value, file_name: &str, needle: &str) {
    let errors = validate_value(file_name, v, Stage::Release).unwrap_err();
    assert!(
        errors.iter().any(|e| e.contains(needle)),
        "{file_name}: {errors:#?}"
    );
}

#[test]
fn selector_semantics_follow_label_selectors() {
    let sel = |v: Value| parse_selector(Some(&v)).unwrap();
    let all = |s: &Selector| -> Vec<(&'static str, &'static str)> {
        SUPPORTED
            .iter()
            .copied()
            .filter(|(o, a)| s.matches(o, a))
            .collect()
    };
    assert_eq!(
        all(&sel(
            json!({"matchLabels": {"os": "linux", "arch": "arm64"}})
        )),
        [("linux", "arm64")]
    );
    assert_eq!(
        all(&sel(json!({"matchExpressions": [
            {"key": "os", "operator": "In", "values": ["darwin"]},
            {"key": "arch", "operator": "NotIn", "values": ["386"]}
        ]}))),
        [("darwin", "amd64"), ("darwin", "arm64")]
    );
    assert_eq!(
        all(&sel(
            json!({"matchExpressions": [{"key": "os", "operator": "Exists"}]})
        ))
        .len(),
        SUPPORTED.len()
    );
    assert!(
        all(&sel(
            json!({"matchExpressions": [{"key": "arch", "operator": "DoesNotExist"}]})
        ))
        .is_empty()
    );
    for bad in [
        json!({"matchExpressions": []}),
        json!({"matchExpressions": [{"key": "os", "operator": "In", "values": []}]}),
        json!({"matchExpressions": [{"key": "os", "operator": "Exists", "values": ["linux"]}]}),
        json!({"matchExpressions": [{"key": "os", "operator": "Equals", "values": ["linux"]}]}),
        json!({"matchLabels": {"os": "linux"}, "matchFields": {}}),
    ] {
        assert!(parse_selector(Some(&bad)).is_err(), "{bad}");
    }
}

#[test]
fn install_simulation_needs_license_and_bin() {
    let file = |mode| Entry {
        kind: EntryKind::File,
        mode,
        size: 1,
        same_as_source: None,
    };
    let tree: BTreeMap<String, Entry> = [
        ("kubectl-secmon".to_owned(), file(0o755)),
        ("LICENSE".to_owned(), file(0o644)),
        ("README.md".to_owned(), file(0o644)),
    ]
    .into_iter()
    .collect();
    let mut p = validate_value("secmon.yaml", &filled_value(), Stage::Release)
        .unwrap()
        .platforms
        .remove(0);

    // The manifest's files list installs exactly the binary and LICENSE.
    let installed = install_tree(tree.clone(), &p).unwrap();
    assert_eq!(
        installed.keys().map(String::as_str).collect::<Vec<_>>(),
        ["LICENSE", "kubectl-secmon"]
    );
    assert!(check_installed(&installed, &p).is_empty());

    // Without `files`, everything is extracted.
    p.files = None;
    assert_eq!(install_tree(tree.clone(), &p).unwrap().len(), 3);

    // A files list that leaves LICENSE in the archive fails krew's license check.
    p.files = Some(vec![FileOperation {
        from: "kubectl-*".to_owned(),
        to: ".".to_owned(),
    }]);
    let installed = install_tree(tree.clone(), &p).unwrap();
    let problems = check_installed(&installed, &p);
    assert!(
        problems.iter().any(|e| e.contains("LICENSE")),
        "{problems:#?}"
    );

    // A non-executable bin, and a glob that matches nothing.
    let mut no_exec = tree.clone();
    no_exec.insert("kubectl-secmon".to_owned(), file(0o644));
    p.files = None;
    let problems = check_installed(&install_tree(no_exec, &p).unwrap(), &p);
    assert!(
        problems.iter().any(|e| e.contains("execute")),
        "{problems:#?}"
    );
    p.files = Some(vec![FileOperation {
        from: "bin/*".to_owned(),
        to: ".".to_owned(),
    }]);
    assert!(install_tree(tree, &p).is_err());
}
