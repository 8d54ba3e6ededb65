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
    #[error(
        "{count} attachments is more than tasks.maxAttachments ({max}); send fewer (combine files into one) or raise the limit"
    )]
    TooMany { count: usize, max: u64 },
    #[error(
        "attachment {index} brings the attachments to {total} bytes, more than tasks.maxAttachmentsBytes ({max}); send fewer or smaller files, or raise the limit"
    )]
    TooMuchInTotal { index: usize, total: u64, max: u64 },
    #[error(
        "attachment {index}: `{path}` is not a regular file ({kind}); attach a file, not a directory, FIFO or device"
    )]
    NotAFile {
        index: usize,
        path: String,
        kind: &'static str,
    },
}

/// What the attachments of one task may add up to (`tasks.maxAttachmentBytes`,
/// `tasks.maxAttachments`, `tasks.maxAttachmentsBytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachmentLimits {
    pub max_count: u64,
    pub max_file_bytes: u64,
    pub max_total_bytes: u64,
}

impl From<&crate::config::TasksConfig> for AttachmentLimits {
    fn from(tasks: &crate::config::TasksConfig) -> Self {
        AttachmentLimits {
            max_count: tasks.max_attachments,
            max_file_bytes: tasks.max_attachment_bytes,
            max_total_bytes: tasks.max_attachments_bytes,
        }
    }
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

    /// What the job record shows of it: kind, name, type and size, never the content.
    pub fn summary(&self) -> orchestra_protocol::AttachmentSummary {
        // The content is the base64 after the data URL's comma: 3 bytes per 4 characters.
        let encoded = self.data_url.rsplit(',').next().unwrap_or("");
        let padding = encoded.bytes().rev().take_while(|b| *b == b'=').count();
        let bytes = (encoded.len() / 4 * 3).saturating_sub(padding);
        orchestra_protocol::AttachmentSummary {
            kind: match self.kind {
                AttachmentType::Image => "image",
                AttachmentType::File => "file",
            }
            .to_owned(),
            name: self.filename.clone(),
            mime_type: self.mime.clone(),
            bytes: u64::try_from(bytes).unwrap_or(u64::MAX),
        }
    }
}

/// Checks and reads the attachments of one task, refusing before any token is spent: too many,
/// too large (each or together), outside the project, not a regular file, or undecodable.
/// Files are read on the blocking pool, so the async runtime is never held up by a disk.
pub async fn prepare(
    attachments: &[Attachment],
    project_dir: &Path,
    limits: AttachmentLimits,
) -> Result<Vec<PreparedAttachment>, AttachmentError> {
    let attachments = attachments.to_vec();
    let project_dir = project_dir.to_path_buf();
    match tokio::task::spawn_blocking(move || prepare_blocking(&attachments, &project_dir, limits))
        .await
    {
        Ok(result) => result,
        Err(join) => Err(AttachmentError::Read {
            index: 0,
            path: String::new(),
            message: format!("reading the attachments was interrupted: {join}"),
        }),
    }
}

/// [`prepare`] on the calling thread, for callers that are not async. Reads at most the
/// configured bytes; never blocks on a FIFO or device (they are refused).
pub fn prepare_blocking(
    attachments: &[Attachment],
    project_dir: &Path,
    limits: AttachmentLimits,
) -> Result<Vec<PreparedAttachment>, AttachmentError> {
    if u64::try_from(attachments.len()).unwrap_or(u64::MAX) > limits.max_count {
        return Err(AttachmentError::TooMany {
            count: attachments.len(),
            max: limits.max_count,
        });
    }
    let mut total = 0u64;
    let mut out = Vec::with_capacity(attachments.len());
    for (index, attachment) in attachments.iter().enumerate() {
        // What is left of the total, and never more than one file may be.
        let room = limits
            .max_file_bytes
            .min(limits.max_total_bytes.saturating_sub(total));
        let prepared = prepare_one(index, attachment, project_dir, limits, total, room)?;
        total = total.saturating_add(prepared.1);
        out.push(prepared.0);
    }
    Ok(out)
}

/// The error for `size` bytes that do not fit: the single-file cap, else the total.
fn too_large(
    index: usize,
    size: u64,
    limits: AttachmentLimits,
    total_before: u64,
) -> AttachmentError {
    if size > limits.max_file_bytes {
        AttachmentError::TooLarge {
            index,
            size,
            max: limits.max_file_bytes,
        }
    } else {
        AttachmentError::TooMuchInTotal {
            index,
            total: total_before.saturating_add(size),
            max: limits.max_total_bytes,
        }
    }
}

fn prepare_one(
    index: usize,
    attachment: &Attachment,
    project_dir: &Path,
    limits: AttachmentLimits,
    total_before: u64,
    room: u64,
) -> Result<(PreparedAttachment, u64), AttachmentError> {
    let (bytes, filename, mime_from_source) = match (&attachment.path, &attachment.base64) {
        (None, None) => return Err(AttachmentError::NoSource { index }),
        (Some(_), Some(_)) => return Err(AttachmentError::BothSources { index }),
        (Some(path), None) => {
            let (resolved, bytes) =
                read_inside(index, path, project_dir, room).map_err(|error| match error {
                    ReadFailure::TooLarge(size) => too_large(index, size, limits, total_before),
                    ReadFailure::Refused(error) => error,
                })?;
            let filename = resolved.file_name().map_or_else(
                || "attachment".to_owned(),
                |n| n.to_string_lossy().into_owned(),
            );
            (bytes, filename, None)
        }
        (None, Some(encoded)) => {
            let (mime, payload) = split_data_url(encoded);
            // Base64 is 4/3 of the payload: reject before decoding a huge one.
            let approx = u64::try_from(payload.len()).unwrap_or(u64::MAX) / 4 * 3;
            if approx > room {
                return Err(too_large(index, approx, limits, total_before));
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
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
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
    Ok((
        PreparedAttachment {
            kind: attachment.kind,
            mime,
            filename,
            data_url,
        },
        size,
    ))
}

enum ReadFailure {
    /// The file has this many bytes, more than there is room for.
    TooLarge(u64),
    Refused(AttachmentError),
}

/// Opens the file once and checks what was opened, not the path: its real location (through
/// `/proc/self/fd`, so a symlink swapped in after the path check cannot redirect the read), that
/// it is a regular file (a FIFO would block, a device never end), and its size; then reads at
/// most `room + 1` bytes, so a file that grows after the check is still caught.
fn read_inside(
    index: usize,
    path: &str,
    project_dir: &Path,
    room: u64,
) -> Result<(PathBuf, Vec<u8>), ReadFailure> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};

    let refused = ReadFailure::Refused;
    let (resolved, project) = resolve_inside(index, path, project_dir).map_err(refused)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        // Opening a FIFO for reading would wait for a writer; O_NONBLOCK returns at once.
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW)
        .open(&resolved)
        .map_err(|e| refused(read_error(index, path, &e)))?;
    // Without procfs the canonical path checked above is all there is.
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    if let Ok(actual) = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        && !actual.starts_with(&project)
    {
        return Err(refused(AttachmentError::OutsideProject {
            index,
            path: path.to_owned(),
            project: project.display().to_string(),
        }));
    }
    let metadata = file
        .metadata()
        .map_err(|e| refused(read_error(index, path, &e)))?;
    let file_type = metadata.file_type();
    if !file_type.is_file() {
        let kind = if file_type.is_dir() {
            "a directory"
        } else if file_type.is_fifo() {
            "a FIFO"
        } else if file_type.is_socket() {
            "a socket"
        } else if file_type.is_block_device() || file_type.is_char_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return Err(refused(AttachmentError::NotAFile {
            index,
            path: path.to_owned(),
            kind,
        }));
    }
    if metadata.len() > room {
        return Err(ReadFailure::TooLarge(metadata.len()));
    }
    let mut bytes = Vec::new();
    file.take(room.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| refused(read_error(index, path, &e)))?;
    let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if read > room {
        return Err(ReadFailure::TooLarge(read));
    }
    Ok((resolved, bytes))
}

fn read_error(index: usize, path: &str, err: &std::io::Error) -> AttachmentError {
    AttachmentError::Read {
        index,
        path: path.to_owned(),
        message: err.to_string(),
    }
}

/// The canonical path of `path` (relative to the project) and the canonical project folder,
/// refusing a path that resolves outside it.
fn resolve_inside(
    index: usize,
    path: &str,
    project_dir: &Path,
) -> Result<(PathBuf, PathBuf), AttachmentError> {
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
    Ok((resolved, project))
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

    fn limits(max_file_bytes: u64) -> AttachmentLimits {
        AttachmentLimits {
            max_count: 10,
            max_file_bytes,
            max_total_bytes: 10 * max_file_bytes,
        }
    }

    fn prepare(
        attachments: &[Attachment],
        project: &Path,
        max_file_bytes: u64,
    ) -> Result<Vec<PreparedAttachment>, AttachmentError> {
        prepare_blocking(attachments, project, limits(max_file_bytes))
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

    #[test]
    fn count_and_total_are_capped_before_anything_is_read() {
        let project = dir();
        for name in ["a.txt", "b.txt", "c.txt"] {
            std::fs::write(project.path().join(name), vec![b'x'; 60]).unwrap();
        }
        let three: Vec<Attachment> = ["a.txt", "b.txt", "c.txt"]
            .iter()
            .map(|n| by_path(AttachmentType::File, n))
            .collect();
        let few = AttachmentLimits {
            max_count: 2,
            max_file_bytes: 100,
            max_total_bytes: 1000,
        };
        let error = prepare_blocking(&three, project.path(), few).unwrap_err();
        assert!(matches!(
            error,
            AttachmentError::TooMany { count: 3, max: 2 }
        ));
        assert!(
            error.to_string().contains("tasks.maxAttachments"),
            "{error}"
        );
        let small_total = AttachmentLimits {
            max_count: 10,
            max_file_bytes: 100,
            max_total_bytes: 150,
        };
        let error = prepare_blocking(&three, project.path(), small_total).unwrap_err();
        assert!(
            matches!(
                error,
                AttachmentError::TooMuchInTotal {
                    index: 2,
                    total: 180,
                    max: 150
                }
            ),
            "{error}"
        );
        assert!(
            error.to_string().contains("tasks.maxAttachmentsBytes"),
            "{error}"
        );
    }

    #[test]
    fn fifos_directories_and_devices_are_refused_without_blocking() {
        let project = dir();
        let fifo = project.path().join("pipe");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::create_dir(project.path().join("sub")).unwrap();
        for (path, kind) in [("pipe", "a FIFO"), ("sub", "a directory")] {
            let error =
                prepare(&[by_path(AttachmentType::File, path)], project.path(), 100).unwrap_err();
            match error {
                AttachmentError::NotAFile { kind: found, .. } => assert_eq!(found, kind),
                other => panic!("{path}: {other}"),
            }
        }
    }

    #[test]
    fn a_symlink_out_of_the_project_is_refused() {
        let project = dir();
        let outside = dir();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), project.path().join("link"))
            .unwrap();
        let error = prepare(
            &[by_path(AttachmentType::File, "link")],
            project.path(),
            100,
        )
        .unwrap_err();
        assert!(
            matches!(error, AttachmentError::OutsideProject { .. }),
            "{error}"
        );
    }

    #[tokio::test]
    async fn the_async_prepare_reads_on_the_blocking_pool() {
        let project = dir();
        std::fs::write(project.path().join("notes.md"), "hello").unwrap();
        let out = super::prepare(
            &[by_path(AttachmentType::File, "notes.md")],
            project.path(),
            limits(100),
        )
        .await
        .unwrap();
        assert_eq!(out[0].data_url, "data:text/plain;base64,aGVsbG8=");
    }
}
