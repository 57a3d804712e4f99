//! Histories for the benchmarks, written with `git fast-import` into a bare
//! repository: commits by mark, with inline files.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

/// A running `git fast-import`.
pub struct FastImport {
    child: Child,
    out: BufWriter<ChildStdin>,
}

impl FastImport {
    /// Starts importing into the bare repository `dir` (already initialised).
    pub fn start(dir: &Path) -> FastImport {
        let mut child = Command::new("git")
            .arg("--git-dir")
            .arg(dir)
            .args(["fast-import", "--quiet"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufWriter::new(child.stdin.take().unwrap());
        FastImport { child, out }
    }

    /// Starts commit `mark` on `branch` by `who` at `time` (seconds), on the
    /// commits marked `parents` (first parent first); files follow.
    pub fn commit(
        &mut self,
        branch: &str,
        mark: usize,
        who: &str,
        time: usize,
        msg: &str,
        parents: &[usize],
    ) {
        writeln!(
            self.out,
            "commit refs/heads/{branch}\nmark :{mark}\nauthor {who} {time} +0000\ncommitter {who} {time} +0000\ndata {}\n{msg}",
            msg.len()
        )
        .unwrap();
        for (i, parent) in parents.iter().enumerate() {
            let kind = if i == 0 { "from" } else { "merge" };
            writeln!(self.out, "{kind} :{parent}").unwrap();
        }
    }

    /// Sets a file of the commit being written.
    pub fn file(&mut self, path: &str, content: &str) {
        writeln!(
            self.out,
            "M 100644 inline {path}\ndata {}\n{content}",
            content.len()
        )
        .unwrap();
    }

    /// Ends the import; panics if git failed.
    pub fn finish(self) {
        let FastImport { mut child, out } = self;
        drop(out);
        assert!(child.wait().unwrap().success());
    }
}
