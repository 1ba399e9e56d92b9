//! The one manifest reader: files, directories (recursive: .yaml, .yml, .json), `-` for
//! stdin; multi-document YAML, JSON streams, and `kind: List`. Every object carries the
//! file and the line where its document starts, and every problem becomes an
//! [`InputError`] naming file and line: the reader never panics on bad input.

use std::collections::HashSet;
use std::fmt;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Files larger than this are refused unless the limit is raised.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;
/// Nesting deeper than this is refused (Kubernetes objects are far shallower).
const MAX_DEPTH: usize = 100;

/// A problem with the input, located as precisely as the reader knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// `path`, `path:line` or `path:line:column`.
    pub location: String,
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

impl std::error::Error for InputError {}

/// Limits on what the reader accepts.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// One input file's text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path it was read from (`None` for stdin).
    pub path: Option<PathBuf>,
    /// The path as shown to users: relative to the scan root where possible, `-` for stdin.
    pub display: String,
    pub text: String,
    pub json: bool,
}

/// One document of a file: its byte range, its first line, and what it parsed to
/// (`Null` for an empty document).
#[derive(Debug, Clone)]
pub struct Document {
    pub range: Range<usize>,
    /// Byte offset of the first content line (after leading comments and markers).
    pub content: usize,
    pub line: usize,
    pub value: Result<Value, InputError>,
}

impl Document {
    /// The objects in the document (several for a `List`, none for an empty document) and
    /// the problems with the ones that could not be read.
    pub fn into_objects(self, display: &str) -> (Vec<Value>, Vec<InputError>) {
        match self.value {
            Ok(v) => unpack(v, display, self.line),
            Err(e) => (Vec::new(), vec![e]),
        }
    }
}

/// An object read from the input, with where it came from.
#[derive(Debug, Clone)]
pub struct Object {
    pub path: String,
    pub line: usize,
    pub value: Value,
}

impl Object {
    pub fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or("")
    }
    pub fn api_version(&self) -> &str {
        self.value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    pub fn name(&self) -> &str {
        self.value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    pub fn namespace(&self) -> Option<&str> {
        self.value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }
}

/// Collect the input files named by `paths` (files, directories, `-`). Problems with one
/// path are reported and the others are still read.
pub fn read_sources(
    paths: &[String],
    scan_root: &Path,
    limits: Limits,
) -> (Vec<SourceFile>, Vec<InputError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let mut seen_dirs = HashSet::new();
    for p in paths {
        if p == "-" {
            match read_stdin(limits) {
                Ok(text) => files.push(SourceFile {
                    path: None,
                    display: "-".into(),
                    json: is_json_stream(&text),
                    text,
                }),
                Err(message) => errors.push(InputError {
                    location: "-".into(),
                    message,
                }),
            }
            continue;
        }
        let path = PathBuf::from(p);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => walk(
                &path,
                scan_root,
                limits,
                &mut seen_dirs,
                &mut files,
                &mut errors,
            ),
            Ok(_) => read_file(&path, scan_root, limits, &mut files, &mut errors),
            Err(e) => errors.push(InputError {
                location: p.clone(),
                message: io_message(&e),
            }),
        }
    }
    (files, errors)
}

fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            if e.raw_os_error() == Some(40) {
                "too many levels of symbolic links (a symlink loop?)".into()
            } else {
                e.to_string()
            }
        }
    }
}

fn walk(
    dir: &Path,
    scan_root: &Path,
    limits: Limits,
    seen: &mut HashSet<PathBuf>,
    files: &mut Vec<SourceFile>,
    errors: &mut Vec<InputError>,
) {
    let canonical = match dir.canonicalize() {
        Ok(c) => c,
        Err(e) => {
            errors.push(InputError {
                location: display_path(dir, scan_root),
                message: io_message(&e),
            });
            return;
        }
    };
    if !seen.insert(canonical) {
        return; // already visited: a symlink cycle or the same directory twice
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            errors.push(InputError {
                location: display_path(dir, scan_root),
                message: io_message(&e),
            });
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => walk(&p, scan_root, limits, seen, files, errors),
            Ok(_) => {
                let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
                if matches!(ext, "yaml" | "yml" | "json") {
                    read_file(&p, scan_root, limits, files, errors);
                }
            }
            Err(e) => errors.push(InputError {
                location: display_path(&p, scan_root),
                message: io_message(&e),
            }),
        }
    }
}

/// The path relative to the scan root when it lies below it, else as given.
pub fn display_path(path: &Path, scan_root: &Path) -> String {
    let rel: PathBuf = match path.strip_prefix(scan_root) {
        Ok(r) => r.to_path_buf(),
        Err(_) => match (scan_root.canonicalize(), path.canonicalize()) {
            (Ok(root), Ok(abs)) => abs
                .strip_prefix(&root)
                .map_or_else(|_| path.to_path_buf(), Path::to_path_buf),
            _ => path.to_path_buf(),
        },
    };
    let s = rel.to_string_lossy().to_string();
    s.strip_prefix("./").map(str::to_string).unwrap_or(s)
}

fn read_file(
    path: &Path,
    scan_root: &Path,
    limits: Limits,
    files: &mut Vec<SourceFile>,
    errors: &mut Vec<InputError>,
) {
    let display = display_path(path, scan_root);
    let result = std::fs::File::open(path)
        .map_err(|e| io_message(&e))
        .and_then(|f| {
            // Refuse an oversized file before reading any of it.
            match f.metadata() {
                Ok(m) if m.is_file() && m.len() > limits.max_file_bytes => Err(too_large(limits)),
                _ => read_limited(f, limits),
            }
        });
    match result {
        Ok(text) => {
            let json = match path.extension().and_then(|e| e.to_str()) {
                Some("json") => true,
                Some("yaml" | "yml") => false,
                _ => is_json_stream(&text),
            };
            files.push(SourceFile {
                path: Some(path.to_path_buf()),
                display,
                text,
                json,
            });
        }
        Err(message) => errors.push(InputError {
            location: display,
            message,
        }),
    }
}

fn read_stdin(limits: Limits) -> Result<String, String> {
    read_limited(std::io::stdin().lock(), limits)
}

fn read_limited(r: impl Read, limits: Limits) -> Result<String, String> {
    let mut buf = Vec::new();
    r.take(limits.max_file_bytes + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io_message(&e))?;
    if buf.len() as u64 > limits.max_file_bytes {
        return Err(too_large(limits));
    }
    text_from_bytes(buf)
}

fn too_large(limits: Limits) -> String {
    format!(
        "larger than the {} MiB limit; split it or raise --max-file-size",
        limits.max_file_bytes / (1024 * 1024)
    )
}

/// Decode input bytes as UTF-8 text, refusing binary data with a clear message.
pub fn text_from_bytes(mut buf: Vec<u8>) -> Result<String, String> {
    if buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
        buf.drain(..3);
    }
    if buf.starts_with(&[0xFF, 0xFE]) || buf.starts_with(&[0xFE, 0xFF]) {
        return Err("UTF-16 text is not supported; convert the file to UTF-8".into());
    }
    if let Some(pos) = buf.iter().position(|&b| b == 0) {
        return Err(format!(
            "binary data (NUL byte at offset {pos}), not YAML or JSON"
        ));
    }
    String::from_utf8(buf).map_err(|e| {
        format!(
            "not valid UTF-8 text (bad byte at offset {}); binary data is not YAML or JSON",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Whether text of unknown format (stdin, other extensions) is a JSON stream: it starts
/// like JSON and every value in it parses. Anything else is read as YAML, which also
/// covers flow-style YAML and JSON documents separated by `---`.
fn is_json_stream(text: &str) -> bool {
    matches!(text.trim_start().as_bytes().first(), Some(b'{'))
        && serde_json::Deserializer::from_str(text)
            .into_iter::<serde::de::IgnoredAny>()
            .all(|r| r.is_ok())
}

/// Split and parse a file into documents.
pub fn documents(file: &SourceFile) -> Vec<Document> {
    if file.json {
        json_documents(file)
    } else {
        yaml_documents(file)
    }
}

/// Every object of every file, and every problem, in input order.
pub fn objects(files: &[SourceFile]) -> (Vec<Object>, Vec<InputError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        for d in documents(f) {
            let line = d.line;
            let (objs, errs) = d.into_objects(&f.display);
            out.extend(objs.into_iter().map(|value| Object {
                path: f.display.clone(),
                line,
                value,
            }));
            errors.extend(errs);
        }
    }
    (out, errors)
}

/// Byte offsets of line starts, for O(log n) offset-to-line lookups.
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex(starts)
    }

    /// The 1-based line holding byte `offset`.
    fn line(&self, offset: usize) -> usize {
        match self.0.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

fn json_documents(file: &SourceFile) -> Vec<Document> {
    let text = file.text.as_str();
    let lines = LineIndex::new(text);
    let mut docs = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    loop {
        let before = stream.byte_offset();
        let start = before + (text.len() - before - text[before..].trim_start().len());
        match stream.next() {
            None => break,
            Some(Ok(v)) => {
                let line = lines.line(start);
                let end = stream.byte_offset();
                docs.push(Document {
                    range: start..end,
                    content: start,
                    line,
                    value: Ok(v),
                });
            }
            Some(Err(e)) => {
                let (line, column) = (e.line(), e.column().max(1));
                let message = e.to_string();
                let message = message
                    .rsplit_once(" at line ")
                    .map_or(message.as_str(), |(m, _)| m)
                    .to_string();
                docs.push(Document {
                    range: start..text.len(),
                    content: start,
                    line: lines.line(start),
                    value: Err(InputError {
                        location: format!("{}:{line}:{column}", file.display),
                        message: format!("invalid JSON: {message}"),
                    }),
                });
                break;
            }
        }
    }
    docs
}

/// Split YAML text at `---` document markers (and `...` end markers) at column 0.
fn split_yaml(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut has_content = false;
    let mut has_directive = false;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let marker = |m: &str| {
            body.strip_prefix(m)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
        };
        if marker("---") {
            if has_content {
                out.push(start..pos);
                start = pos;
                has_directive = false;
            } else if !has_directive {
                start = pos;
            }
            has_content = body.len() > 3 && !body[3..].trim_start().starts_with('#');
        } else if marker("...") {
            if has_content {
                out.push(start..pos);
            }
            start = pos + line.len();
            has_content = false;
            has_directive = false;
        } else if body.starts_with('%') && !has_content {
            has_directive = true;
        } else {
            let t = body.trim_start();
            if !t.is_empty() && !t.starts_with('#') {
                has_content = true;
            }
        }
        pos += line.len();
    }
    if has_content {
        out.push(start..text.len());
    }
    out
}

/// Byte offset of the first line of a document that is not blank, a comment, a `---`
/// marker or a directive.
fn content_start(text: &str, range: &Range<usize>) -> usize {
    let mut offset = range.start;
    for line in text[range.clone()].split_inclusive('\n') {
        let t = line.trim();
        let is_marker = t == "---" || t.starts_with("--- #");
        if !t.is_empty() && !t.starts_with('#') && !is_marker && !t.starts_with('%') {
            break;
        }
        offset += line.len();
    }
    offset.min(range.end)
}

fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    options
}

fn yaml_documents(file: &SourceFile) -> Vec<Document> {
    let text = file.text.as_str();
    let lines = LineIndex::new(text);
    let ranges = split_yaml(text);
    let parse = |range: &Range<usize>| {
        let doc_text = &text[range.clone()];
        let base_line = lines.line(range.start);
        let content = content_start(text, range);
        let line = lines.line(content);
        let value = serde_saphyr::from_str_with_options::<Value>(doc_text, yaml_options())
            .map_err(|e| yaml_error(&file.display, base_line, &e));
        Document {
            range: range.clone(),
            content,
            line,
            value,
        }
    };
    // Documents are independent: parse large streams on every core, keeping their order.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if threads < 2 || ranges.len() < 256 {
        return ranges.iter().map(parse).collect();
    }
    let chunk = ranges.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = ranges
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(parse).collect::<Vec<_>>()))
            .collect();
        let mut docs = Vec::with_capacity(ranges.len());
        for (h, part) in handles.into_iter().zip(ranges.chunks(chunk)) {
            match h.join() {
                Ok(d) => docs.extend(d),
                // A parser panic is a bug; parse that part again here so it surfaces once.
                Err(_) => docs.extend(part.iter().map(parse)),
            }
        }
        docs
    })
}

fn yaml_error(display: &str, base_line: usize, e: &serde_saphyr::Error) -> InputError {
    let location = match e.location() {
        Some(loc) if loc.line() > 0 => format!(
            "{display}:{}:{}",
            base_line + loc.line() as usize - 1,
            loc.column()
        ),
        _ => format!("{display}:{base_line}"),
    };
    if let Some(plain) = plain_yaml_error(e) {
        return InputError {
            location,
            message: format!("invalid YAML: {plain}"),
        };
    }
    let full = e.to_string();
    // The crate's message may carry a rendered snippet and its own position; keep the
    // first line, without the position (we give it in the location) or tuning hints.
    let mut first = full
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .trim_start_matches("error: ");
    if first.starts_with("line ")
        && let Some((_, rest)) = first.split_once(": ")
    {
        first = rest;
    }
    let first = first
        .split(", set DuplicateKeyPolicy")
        .next()
        .unwrap_or(first);
    let first = first.split_once(" at line ").map_or(first, |(m, _)| m);
    InputError {
        location,
        message: format!("invalid YAML: {first}"),
    }
}

/// Messages for the parser's resource limits, in words for people.
fn plain_yaml_error(e: &serde_saphyr::Error) -> Option<&'static str> {
    use serde_saphyr::Error;
    use serde_saphyr::budget::BudgetBreach;
    let mut e = e;
    while let Error::WithSnippet { error, .. } | Error::AliasError { error, .. } = e {
        e = error;
    }
    match e {
        Error::Budget {
            breach: BudgetBreach::Depth { .. },
            ..
        } => Some("nested deeper than 100 levels; Kubernetes objects are far shallower"),
        Error::Budget { .. } => Some("too many nodes or aliases (a YAML alias bomb?)"),
        Error::RecursiveReferencesRequireWeakTypes { .. } => {
            Some("an alias refers to its own anchor (recursive YAML is not allowed)")
        }
        _ => None,
    }
}

/// Turn a parsed document into objects: none for an empty document, the items of a List.
/// Bad items of a List are reported and the good ones kept.
pub fn unpack(v: Value, display: &str, line: usize) -> (Vec<Value>, Vec<InputError>) {
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    unpack_into(v, display, line, "", &mut objects, &mut errors);
    (objects, errors)
}

fn unpack_into(
    v: Value,
    display: &str,
    line: usize,
    context: &str,
    objects: &mut Vec<Value>,
    errors: &mut Vec<InputError>,
) {
    let mut err = |message: String| {
        errors.push(InputError {
            location: format!("{display}:{line}"),
            message: format!("{context}{message}"),
        })
    };
    let m = match v {
        Value::Null => return,
        Value::Object(m) => m,
        other => {
            return err(format!(
                "document is {}, not a Kubernetes object (a mapping with apiVersion and kind)",
                match other {
                    Value::Array(_) => "a list",
                    Value::String(_) => "a string",
                    Value::Number(_) => "a number",
                    _ => "a boolean",
                }
            ));
        }
    };
    let kind = match m.get("kind") {
        Some(Value::String(k)) if !k.is_empty() => k.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return err(
                "object has no kind; every Kubernetes object needs apiVersion and kind".into(),
            );
        }
        Some(other) => return err(format!("kind must be a string, found {other}")),
    };
    if kind.ends_with("List") && m.contains_key("items") {
        let mut m = m;
        let Some(Value::Array(items)) = m.remove("items") else {
            return err(format!("{kind}.items must be a list"));
        };
        for (i, item) in items.into_iter().enumerate() {
            let ctx = format!("{context}{kind}.items[{i}]: ");
            unpack_into(item, display, line, &ctx, objects, errors);
        }
        return;
    }
    match m.get("apiVersion") {
        Some(Value::String(a)) if !a.is_empty() => {}
        None | Some(Value::Null) | Some(Value::String(_)) => {
            return err(format!("{kind} has no apiVersion"));
        }
        Some(other) => return err(format!("apiVersion must be a string, found {other}")),
    }
    objects.push(Value::Object(m));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> SourceFile {
        SourceFile {
            path: None,
            display: "f.yaml".into(),
            text: text.into(),
            json: false,
        }
    }

    #[test]
    fn splits_documents_and_reports_their_first_line() {
        let text = "# comment\n---\napiVersion: v1\nkind: Pod\n---\n\n---\n# c\napiVersion: v1\nkind: Namespace\n...\n";
        let docs = documents(&file(text));
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].line, 3);
        assert_eq!(docs[1].line, 9);
        assert!(docs.into_iter().all(|d| d.into_objects("f").0.len() == 1));
    }

    #[test]
    fn directives_stay_with_their_document() {
        let docs = documents(&file("%YAML 1.2\n---\napiVersion: v1\nkind: Pod\n"));
        assert_eq!(docs.len(), 1);
        assert!(docs[0].value.is_ok(), "{:?}", docs[0].value);
    }

    #[test]
    fn lists_are_flattened() {
        let docs = documents(&file(
            "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod}\n- {apiVersion: v1, kind: Pod}\n",
        ));
        assert_eq!(docs[0].clone().into_objects("f").0.len(), 2);
        let docs = documents(&file(
            "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod}\n- 7\n- {kind: Pod}\n",
        ));
        let (objects, errors) = docs[0].clone().into_objects("f");
        assert_eq!(objects.len(), 1, "good items are kept");
        assert_eq!(errors.len(), 2);
        assert!(
            errors[0]
                .message
                .starts_with("List.items[1]: document is a number"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn syntax_errors_carry_the_absolute_line() {
        let docs = documents(&file(
            "apiVersion: v1\nkind: Pod\n---\napiVersion: v1\nkind: [\n",
        ));
        let e = docs[1].value.as_ref().unwrap_err();
        assert!(
            e.location.starts_with("f.yaml:5") || e.location.starts_with("f.yaml:6"),
            "{e}"
        );
        assert!(e.message.starts_with("invalid YAML"), "{e}");
    }

    #[test]
    fn json_streams_are_read_with_lines() {
        let f = SourceFile {
            path: None,
            display: "f.json".into(),
            text: "{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}\n\n{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}".into(),
            json: true,
        };
        let docs = documents(&f);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].line, 3);
    }

    #[test]
    fn line_index_maps_offsets_to_lines() {
        let idx = LineIndex::new("a\nbc\n\nd");
        assert_eq!(
            [0, 1, 2, 4, 5, 6, 7].map(|o| idx.line(o)),
            [1, 1, 2, 2, 3, 4, 4]
        );
    }

    #[test]
    fn binary_and_utf16_are_refused() {
        assert!(
            text_from_bytes(vec![0x7f, b'E', b'L', b'F', 0, 1])
                .unwrap_err()
                .contains("binary")
        );
        assert!(
            text_from_bytes(vec![0xff, 0xfe, b'a', 0])
                .unwrap_err()
                .contains("UTF-16")
        );
        assert!(
            text_from_bytes(vec![0xc3, 0x28])
                .unwrap_err()
                .contains("UTF-8")
        );
        assert_eq!(
            text_from_bytes(b"\xEF\xBB\xBFa: 1".to_vec()).unwrap(),
            "a: 1"
        );
    }
}
