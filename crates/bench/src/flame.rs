//! A profile you can look at (issue 20 §4): `perf record` on one process while a group runs,
//! then `perf script` folded and drawn as a flame graph SVG with `inferno` — in-process, so
//! nothing is downloaded at run time. The measured binary should be built with frame pointers
//! and line tables (see the README's bench section), or the stacks stop at the first frame.
//!
//! `orchestra-bench flame PERF_DATA SVG` draws an existing recording.

use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};
use inferno::collapse::Collapse;

/// perf's sampling rate: enough samples in a few minutes, a data file of tens of MB.
const FREQUENCY: &str = "499";

/// A `perf record` attached to one process.
pub struct Recording {
    perf: tokio::process::Child,
    data: PathBuf,
    svg: PathBuf,
    title: String,
}

fn perf_bin() -> PathBuf {
    std::env::var_os("ORCHESTRA_BENCH_PERF").map_or_else(|| PathBuf::from("perf"), PathBuf::from)
}

impl Recording {
    /// Starts recording `pid` (call stacks by frame pointer) into `dir/<name>.perf.data`.
    pub fn start(pid: u32, dir: &Path, name: &str) -> anyhow::Result<Recording> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let data = dir.join(format!("{name}.perf.data"));
        let perf = tokio::process::Command::new(perf_bin())
            .args(["record", "-q", "-F", FREQUENCY, "-g", "-p"])
            .arg(pid.to_string())
            .arg("-o")
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // Not killed when a failed group drops it: `perf record -p` ends by itself when the
            // hub stops (the bench stops every hub it started) and so still writes its data.
            .kill_on_drop(false)
            .spawn()
            .context(
                "cannot run `perf` (Debian: apt-get install linux-perf; or set \
                 ORCHESTRA_BENCH_PERF to its path)",
            )?;
        Ok(Recording {
            perf,
            svg: dir.join(format!("{name}.svg")),
            data,
            title: format!("orchestra hub ({name})"),
        })
    }

    /// Stops perf (SIGINT, so it writes its data), draws the flame graph; returns a note.
    pub async fn finish(mut self) -> anyhow::Result<String> {
        let pid = self.perf.id().context("perf exited early")?;
        let sent = tokio::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .await
            .context("running kill -INT on perf")?;
        if !sent.success() {
            bail!("could not stop perf (pid {pid})");
        }
        let status = self.perf.wait().await.context("waiting for perf")?;
        if !status.success() && !self.data.is_file() {
            bail!("perf record failed ({status}); is perf_event_paranoid too strict?");
        }
        let data = self.data.clone();
        let svg = self.svg.clone();
        let title = self.title.clone();
        tokio::task::spawn_blocking(move || draw(&data, &svg, &title))
            .await
            .context("the flame graph drawing panicked")??;
        Ok(format!(
            "profile: perf record -F {FREQUENCY} -g on the hub during the run: {} (data {})",
            self.svg.display(),
            self.data.display()
        ))
    }
}

/// `perf script` of `data`, folded, drawn into `svg`.
pub fn draw(data: &Path, svg: &Path, title: &str) -> anyhow::Result<()> {
    let mut script = std::process::Command::new(perf_bin())
        .arg("script")
        .arg("-i")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run `perf script`")?;
    let stdout = script.stdout.take().context("perf script has no stdout")?;
    let mut folded = Vec::new();
    inferno::collapse::perf::Folder::default()
        .collapse(BufReader::new(stdout), &mut folded)
        .context("folding perf script's stacks")?;
    let status = script.wait().context("waiting for perf script")?;
    if !status.success() {
        bail!("perf script -i {} failed ({status})", data.display());
    }
    let mut options = inferno::flamegraph::Options::default();
    options.title = title.to_owned();
    let out = std::fs::File::create(svg).with_context(|| format!("creating {}", svg.display()))?;
    inferno::flamegraph::from_reader(&mut options, folded.as_slice(), BufWriter::new(out))
        .context("drawing the flame graph")?;
    Ok(())
}
