//! Reading YAML files with positions, so every error names file, line and column.

use marked_yaml::{LoaderOptions, Span, Spanned};
use serde::de::DeserializeOwned;
use std::fmt;
use std::path::{Path, PathBuf};

/// A place in an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Bad input: where it is and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct InputError {
    /// Where the problem is.
    pub location: Location,
    /// What is wrong and what was expected.
    pub message: String,
}

impl InputError {
    /// An error at the start of a span of `file`.
    pub fn at(file: &Path, span: &Span, message: impl Into<String>) -> Self {
        let (line, column) = span
            .start()
            .map(|m| (m.line(), m.column()))
            .unwrap_or((0, 0));
        InputError {
            location: Location {
                file: file.to_path_buf(),
                line,
                column,
            },
            message: message.into(),
        }
    }

    /// An error about a whole file (it could not be read, say).
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        InputError {
            location: Location {
                file: file.to_path_buf(),
                line: 1,
                column: 1,
            },
            message: message.into(),
        }
    }

    /// An error at the place a spanned value came from.
    pub fn spanned<T>(file: &Path, value: &Spanned<T>, message: impl Into<String>) -> Self {
        Self::at(file, value.span(), message)
    }
}

/// Read and deserialize a YAML file, with file:line:col on every error.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, InputError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| InputError::file(path, format!("cannot read file: {e}")))?;
    parse(path, &text)
}

/// Deserialize YAML text that came from `path`.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, InputError> {
    let options = LoaderOptions::default().error_on_duplicate_keys(true);
    marked_yaml::from_yaml_with_options(0, text, options).map_err(|e| from_yaml_error(path, e))
}

fn from_yaml_error(path: &Path, error: marked_yaml::FromYamlError) -> InputError {
    use marked_yaml::LoadError as L;
    let location = |marker: Option<&marked_yaml::Marker>| Location {
        file: path.to_path_buf(),
        line: marker.map(|m| m.line()).unwrap_or(0),
        column: marker.map(|m| m.column()).unwrap_or(0),
    };
    match error {
        marked_yaml::FromYamlError::ParseYaml(load) => {
            let (marker, message) = match &load {
                L::TopLevelMustBeMapping(m) => {
                    (Some(*m), "expected a mapping at the top level".into())
                }
                L::TopLevelMustBeSequence(m) => {
                    (Some(*m), "expected a sequence at the top level".into())
                }
                L::UnexpectedAnchor(m) => {
                    (Some(*m), "anchors and aliases are not supported".into())
                }
                L::MappingKeyMustBeScalar(m) => (Some(*m), "expected a plain key".into()),
                L::UnexpectedTag(m) => (Some(*m), "YAML tags are not supported".into()),
                L::ScanError(m, e) => (Some(*m), format!("invalid YAML: {e}")),
                L::DuplicateKey(inner) => (
                    inner.key.span().start().copied(),
                    format!("duplicate key `{}`", inner.key.as_str()),
                ),
                #[allow(unreachable_patterns)]
                other => (None, other.to_string()),
            };
            InputError {
                location: location(marker.as_ref()),
                message,
            }
        }
        marked_yaml::FromYamlError::FromNode(node) => {
            let marker = node.start_mark();
            InputError {
                location: location(marker.as_ref()),
                message: node.to_string(),
            }
        }
    }
}

/// A duration written as in `5s`, `500ms` or `2m` (and serialized so).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration(pub std::time::Duration);

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(self.0))
    }
}

impl<'de> serde::Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim())
            .map(Duration)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "expected a duration such as `5s` or `500ms`, found `{text}` ({e})"
                ))
            })
    }
}

/// A duration that may be drawn: `30s`, or a range `30s..90s` drawn from the run's seed
/// (each cycle of a soak draws its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationRange {
    /// The shortest it can be.
    pub min: std::time::Duration,
    /// The longest it can be (equal to `min` for a fixed duration).
    pub max: std::time::Duration,
}

impl DurationRange {
    /// Read `5s` or `5s..9s`.
    pub fn parse(text: &str) -> Result<DurationRange, String> {
        let one = |t: &str| {
            humantime::parse_duration(t.trim()).map_err(|_| {
                format!(
                    "expected a duration such as `5s` or `500ms` (or a range such as `30s..90s`), found `{text}`"
                )
            })
        };
        let (min, max) = match text.split_once("..") {
            Some((a, b)) => (one(a)?, one(b)?),
            None => (one(text)?, one(text)?),
        };
        if min > max {
            return Err(format!(
                "expected a range from the shorter to the longer, found `{text}`"
            ));
        }
        Ok(DurationRange { min, max })
    }

    /// Is it a range rather than one duration?
    pub fn is_drawn(&self) -> bool {
        self.min != self.max
    }
}

impl fmt::Display for DurationRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |d| humantime::format_duration(d).to_string();
        if self.is_drawn() {
            write!(f, "{}..{}", show(self.min), show(self.max))
        } else {
            write!(f, "{}", show(self.min))
        }
    }
}

impl<'de> serde::Deserialize<'de> for DurationRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        DurationRange::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A size in bytes written as `512KiB`, `1MiB`, `2GB` or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bytes(pub f64);

impl Bytes {
    /// Read a size.
    pub fn parse(text: &str) -> Result<Bytes, String> {
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
            .unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let scale = match unit.trim() {
            "" | "B" => 1.0,
            "KB" | "kB" => 1e3,
            "MB" => 1e6,
            "GB" => 1e9,
            "KiB" => 1024.0,
            "MiB" => 1024.0 * 1024.0,
            "GiB" => 1024.0 * 1024.0 * 1024.0,
            _ => f64::NAN,
        };
        match number.replace('_', "").parse::<f64>() {
            Ok(n) if scale.is_finite() && n >= 0.0 => Ok(Bytes(n * scale)),
            _ => Err(format!(
                "expected a size such as `512KiB`, `1MiB` or `2000000`, found `{text}`"
            )),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) if n >= 0.0 => Ok(Bytes(n)),
            Raw::Number(n) => Err(serde::de::Error::custom(format!(
                "expected a size of at least 0 bytes, found {n}"
            ))),
            Raw::Text(t) => Bytes::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[allow(dead_code)]
        name: Spanned<String>,
        #[allow(dead_code)]
        wait: Option<Duration>,
    }

    fn err(text: &str) -> String {
        parse::<Doc>(Path::new("s.yaml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_file_line_and_column() {
        assert_eq!(
            err("name: a\nnmae: b\n"),
            "s.yaml:2:1: nmae: Unknown field `nmae`, expected `name` or `wait`"
        );
        assert!(
            err("name: a\nwait: soon\n").starts_with("s.yaml:2:7: wait: expected a duration"),
            "{}",
            err("name: a\nwait: soon\n")
        );
        assert!(
            err("name: [a\n").starts_with("s.yaml:"),
            "{}",
            err("name: [a\n")
        );
        assert_eq!(
            err("name: a\nname: b\n"),
            "s.yaml:2:1: duplicate key `name`"
        );
    }

    #[test]
    fn durations_and_ranges_and_sizes_read_as_written() {
        let r = DurationRange::parse("30s..1m30s").unwrap();
        assert_eq!((r.min.as_secs(), r.max.as_secs()), (30, 90));
        assert!(r.is_drawn());
        assert_eq!(r.to_string(), "30s..1m 30s");
        assert!(!DurationRange::parse("5s").unwrap().is_drawn());
        assert!(
            DurationRange::parse("9s..5s")
                .unwrap_err()
                .contains("shorter")
        );
        assert!(
            DurationRange::parse("soon")
                .unwrap_err()
                .contains("30s..90s")
        );
        assert_eq!(Bytes::parse("1MiB").unwrap().0, 1_048_576.0);
        assert_eq!(Bytes::parse("512 KiB").unwrap().0, 524_288.0);
        assert_eq!(Bytes::parse("2_000").unwrap().0, 2_000.0);
        assert!(Bytes::parse("3 parsecs").is_err());
    }
}
