//! Attachments become OpenCode `file` parts, checked before any token is spent.

use std::path::{Path, PathBuf};

use base64::Engine;
use orchestra_protocol::{Attachment, AttachmentType};

use crate::opencode::PartInput;

#[derive(Debug, thiserror::Error)]
pub enum AttachmentError {
    #[error("attachment {index}: give either `path` or `base64`")]
    NoSource { index: usize },
    #[error("attachment {index}: give only one of `path` and `base64`, not both")]
    BothSources { index: usize },
    #[error(
        "attachment {index}: file `{path}` does not exist; paths are resolved against the project directory {project}"
    )]
    Missing {
        index: usize,
        path: String,
        project: String,
    },
    #[error(
        "attachment {index}: `{path}` is outside the project directory {project}; copy it into the project first"
    )]
    OutsideProject {
        index: usize,
        path: String,
        project: String,
    },
    #[error(
        "attachment {index}: {size} bytes is more than tasks.maxAttachmentBytes ({max}); send a smaller file or raise the limit"
    )]
    TooLarge { index: usize, size: u64, max: u64 },
    #[error("attachment {index}: `base64` is not valid base64: {message}")]
    BadBase64 { index: usize, message: String },
    #[error("attachment {index}: could not read `{path}`: {message}")]
    Read {
        index: usize,
        path: String,
        message: String,
    },
    #[error("attachment {index}: `{mime}` is not an image; use type \"file\" for it")]
    NotAnImage { index: usize, mime: String },
}

/// A checked attachment, ready to send.
#[derive(Debug, Clone)]
pub struct PreparedAttachment {
    pub kind: AttachmentType,
    pub mime: String,
    pub filename: String,
    pub data_url: String,
}

impl PreparedAttachment {
    pub fn to_part(&self) -> PartInput {
        PartInput::File {
            mime: self.mime.clone(),
            filename: self.filename.clone(),
            url: self.data_url.clone(),
        }
    }
}

pub fn prepare(
    attachments: &[Attachment],
    project_dir: &Path,
    max_bytes: u64,
) -> Result<Vec<PreparedAttachment>, AttachmentError> {
    attachments
        .iter()
        .enumerate()
        .map(|(index, a)| prepare_one(index, a, project_dir, max_bytes))
        .collect()
}

fn prepare_one(
    index: usize,
    attachment: &Attachment,
    project_dir: &Path,
    max_bytes: u64,
) -> Result<PreparedAttachment, AttachmentError> {
    let (bytes, filename, mime_from_source) = match (&attachment.path, &attachment.base64) {
        (None, None) => return Err(AttachmentError::NoSource { index }),
        (Some(_), Some(_)) => return Err(AttachmentError::BothSources { index }),
        (Some(path), None) => {
            let resolved = resolve_inside(index, path, project_dir)?;
            let size = std::fs::metadata(&resolved)
                .map_err(|e| read_error(index, path, &e))?
                .len();
            if size > max_bytes {
                return Err(AttachmentError::TooLarge {
                    index,
                    size,
                    max: max_bytes,
                });
            }
            let bytes = std::fs::read(&resolved).map_err(|e| read_error(index, path, &e))?;
            let filename = resolved.file_name().map_or_else(
                || "attachment".to_owned(),
                |n| n.to_string_lossy().into_owned(),
            );
            (bytes, filename, None)
        }
        (None, Some(encoded)) => {
            let (mime, payload) = split_data_url(encoded);
            // Base64 is 4/3 of the payload: reject before decoding a huge one.
            let approx = (payload.len() as u64) / 4 * 3;
            if approx > max_bytes {
                return Err(AttachmentError::TooLarge {
                    index,
                    size: approx,
                    max: max_bytes,
                });
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(payload.trim())
                .map_err(|e| AttachmentError::BadBase64 {
                    index,
                    message: e.to_string(),
                })?;
            (bytes, format!("attachment-{}", index + 1), mime)
        }
    };
    let mime = attachment
        .mime_type
        .clone()
        .or(mime_from_source)
        .unwrap_or_else(|| guess_mime(&filename, &bytes, attachment.kind).to_owned());
    if attachment.kind == AttachmentType::Image && !mime.starts_with("image/") {
        return Err(AttachmentError::NotAnImage { index, mime });
    }
    let data_url = format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&bytes)
    );
    Ok(PreparedAttachment {
        kind: attachment.kind,
        mime,
        filename,
        data_url,
    })
}

fn read_error(index: usize, path: &str, err: &std::io::Error) -> AttachmentError {
    AttachmentError::Read {
        index,
        path: path.to_owned(),
        message: err.to_string(),
    }
}

fn resolve_inside(
    index: usize,
    path: &str,
    project_dir: &Path,
) -> Result<PathBuf, AttachmentError> {
    let candidate = if Path::new(path).is_absolute() {
        PathBuf::from(path)
    } else {
        project_dir.join(path)
    };
    let project = project_dir
        .canonicalize()
        .unwrap_or_else(|_| project_dir.to_path_buf());
    let resolved = candidate
        .canonicalize()
        .map_err(|_| AttachmentError::Missing {
            index,
            path: path.to_owned(),
            project: project.display().to_string(),
        })?;
    if !resolved.starts_with(&project) {
        return Err(AttachmentError::OutsideProject {
            index,
            path: path.to_owned(),
            project: project.display().to_string(),
        });
    }
    Ok(resolved)
}

fn split_data_url(value: &str) -> (Option<String>, &str) {
    if let Some(rest) = value.strip_prefix("data:")
        && let Some((meta, payload)) = rest.split_once(',')
    {
        let mime = meta.trim_end_matches(";base64");
        let mime = (!mime.is_empty()).then(|| mime.to_owned());
        return (mime, payload);
    }
    (None, value)
}

fn guess_mime(filename: &str, bytes: &[u8], kind: AttachmentType) -> &'static str {
    let ext = filename
        .rsplit('.')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "json" => "application/json",
        "md" | "txt" | "rs" | "ts" | "js" | "py" | "toml" | "yaml" | "yml" | "csv" | "log" => {
            "text/plain"
        }
        _ => sniff(bytes, kind),
    }
}

fn sniff(bytes: &[u8], kind: AttachmentType) -> &'static str {
    if bytes.starts_with(b"\x89PNG") {
        "image/png"
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        "image/jpeg"
    } else if bytes.starts_with(b"GIF8") {
        "image/gif"
    } else {
        match kind {
            AttachmentType::Image => "application/octet-stream",
            AttachmentType::File if std::str::from_utf8(bytes).is_ok() => "text/plain",
            AttachmentType::File => "application/octet-stream",
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    fn by_path(kind: AttachmentType, path: &str) -> Attachment {
        Attachment {
            kind,
            path: Some(path.into()),
            base64: None,
            mime_type: None,
        }
    }

    #[test]
    fn file_inside_project_becomes_a_data_url() {
        let project = dir();
        std::fs::write(project.path().join("notes.md"), "hello").unwrap();
        let out = prepare(
            &[by_path(AttachmentType::File, "notes.md")],
            project.path(),
            100,
        )
        .unwrap();
        assert_eq!(out[0].mime, "text/plain");
        assert_eq!(out[0].data_url, "data:text/plain;base64,aGVsbG8=");
    }

    #[test]
    fn bad_inputs_are_named() {
        let project = dir();
        let outside = dir();
        std::fs::write(outside.path().join("x.png"), b"\x89PNG").unwrap();
        std::fs::write(project.path().join("big.txt"), vec![b'a'; 200]).unwrap();
        let missing = prepare(
            &[by_path(AttachmentType::File, "nope.txt")],
            project.path(),
            100,
        );
        assert!(matches!(missing, Err(AttachmentError::Missing { .. })));
        let path = outside.path().join("x.png").display().to_string();
        let out = prepare(
            &[by_path(AttachmentType::Image, &path)],
            project.path(),
            100,
        );
        assert!(matches!(out, Err(AttachmentError::OutsideProject { .. })));
        let big = prepare(
            &[by_path(AttachmentType::File, "big.txt")],
            project.path(),
            100,
        );
        assert!(matches!(
            big,
            Err(AttachmentError::TooLarge { size: 200, .. })
        ));
        let bad = Attachment {
            kind: AttachmentType::Image,
            path: None,
            base64: Some("data:image/png;base64,@@@".into()),
            mime_type: None,
        };
        assert!(matches!(
            prepare(&[bad], project.path(), 100),
            Err(AttachmentError::BadBase64 { .. })
        ));
    }

    #[test]
    fn base64_with_data_url_prefix_keeps_its_mime() {
        let project = dir();
        let a = Attachment {
            kind: AttachmentType::Image,
            path: None,
            base64: Some("data:image/png;base64,iVBORw0KGgo=".into()),
            mime_type: None,
        };
        let out = prepare(&[a], project.path(), 1000).unwrap();
        assert_eq!(out[0].mime, "image/png");
        assert!(out[0].data_url.starts_with("data:image/png;base64,"));
    }
}
