//! Where `send` takes its messages from (arguments, a file, stdin) and how `recv` prints what
//! it receives (raw, lines, hex, JSON).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use serde_json::{json, Map, Value};

/// The messages `send` sends, and how often.
pub(crate) struct Input {
    source: Source,
    /// Each line of a file or stdin is a message.
    lines: bool,
    /// Times the whole input is sent.
    count: u64,
}

enum Source {
    Args(Vec<Vec<u8>>),
    Reader(Box<dyn BufRead>),
}

impl Input {
    /// The messages of `args`, else of `file`, else of stdin. The file is opened now, so a
    /// missing one fails before any object is touched.
    pub(crate) fn new(
        args: Vec<String>,
        file: Option<PathBuf>,
        lines: bool,
        count: u64,
    ) -> anyhow::Result<Input> {
        let source = if !args.is_empty() {
            Source::Args(args.into_iter().map(String::into_bytes).collect())
        } else if let Some(path) = file.filter(|p| p.as_os_str() != "-") {
            let f = File::open(&path)
                .with_context(|| format!("open the input file {}", path.display()))?;
            Source::Reader(Box::new(BufReader::new(f)))
        } else {
            Source::Reader(Box::new(BufReader::new(io::stdin())))
        };
        Ok(Input {
            source,
            lines,
            count,
        })
    }

    /// Whether the messages come from the command's arguments.
    pub(crate) fn is_arguments(&self) -> bool {
        matches!(self.source, Source::Args(_))
    }

    /// Calls `send` with every message in order; returns how many were sent.
    ///
    /// Lines are read and sent one at a time, so a pipe feeding `--lines` is forwarded as it
    /// comes, each line checked against `limit` before it is sent. Other inputs are read
    /// whole, and every message is checked before the first is sent.
    pub(crate) fn each(
        &mut self,
        limit: Option<&Limit>,
        mut send: impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64> {
        let mut sent = 0;
        if let Source::Reader(reader) = &mut self.source {
            if self.lines && self.count == 1 {
                let mut line = Vec::new();
                loop {
                    line.clear();
                    if reader
                        .read_until(b'\n', &mut line)
                        .context("read the input")?
                        == 0
                    {
                        return Ok(sent);
                    }
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if let Some(limit) = limit {
                        limit.check(line.len(), sent)?;
                    }
                    send(&line)?;
                    sent += 1;
                }
            }
        }
        let messages = self.collect()?;
        if let Some(limit) = limit {
            for msg in &messages {
                limit.check(msg.len(), 0)?;
            }
        }
        for _ in 0..self.count {
            for msg in &messages {
                send(msg)?;
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// Writes the input to a byte stream: a message from an argument or a line ends with a
    /// newline (as `echo` writes it); a file or stdin without `--lines` is copied as it is,
    /// as it comes. Returns the bytes written.
    pub(crate) fn copy_to(&mut self, out: &mut dyn Write) -> anyhow::Result<u64> {
        if let Source::Reader(reader) = &mut self.source {
            if !self.lines && self.count == 1 {
                return copy_stream(reader, out);
            }
        }
        let newline = self.lines || self.is_arguments();
        let mut written = 0;
        self.each(None, |msg| {
            out.write_all(msg)?;
            if newline {
                out.write_all(b"\n")?;
            }
            out.flush()?;
            written += msg.len() as u64 + u64::from(newline);
            Ok(())
        })?;
        Ok(written)
    }

    /// Every message, read whole.
    fn collect(&mut self) -> anyhow::Result<Vec<Vec<u8>>> {
        match &mut self.source {
            Source::Args(args) => Ok(std::mem::take(args)),
            Source::Reader(reader) => {
                let mut all = Vec::new();
                reader.read_to_end(&mut all).context("read the input")?;
                if !self.lines {
                    return Ok(vec![all]);
                }
                let mut msgs: Vec<Vec<u8>> =
                    all.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
                if all.last() == Some(&b'\n') {
                    msgs.pop();
                }
                Ok(msgs)
            }
        }
    }
}

/// The largest message a mechanism takes, checked before sending.
pub(crate) struct Limit {
    /// In bytes.
    pub(crate) bytes: usize,
    /// What sets it, for the message: "the queue's message size".
    pub(crate) what: &'static str,
}

impl Limit {
    pub(crate) fn new(bytes: usize, what: &'static str) -> Limit {
        Limit { bytes, what }
    }

    fn check(&self, len: usize, sent: u64) -> anyhow::Result<()> {
        if len > self.bytes {
            anyhow::bail!(
                "a message of {len} bytes is over {}, {} bytes; {sent} message(s) sent",
                self.what,
                self.bytes
            );
        }
        Ok(())
    }
}

/// Copies `reader` to `out` as the bytes come, flushing after each read.
fn copy_stream(reader: &mut dyn BufRead, out: &mut dyn Write) -> anyhow::Result<u64> {
    let mut total = 0;
    loop {
        let chunk = reader.fill_buf().context("read the input")?;
        if chunk.is_empty() {
            return Ok(total);
        }
        let n = chunk.len();
        out.write_all(chunk)?;
        out.flush()?;
        reader.consume(n);
        total += n as u64;
    }
}

/// How `recv` prints messages.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// The bytes as they are, nothing between messages.
    Raw,
    /// Each message followed by a newline.
    Lines,
    /// Each message as lowercase hex digits on a line.
    Hex,
    /// Each message as a JSON object on a line: len, text (or hex when not UTF-8), and the
    /// priority, type or sender where the mechanism has one.
    Json,
}

/// What a mechanism tells about a message besides its bytes.
#[derive(Debug, Default, Clone)]
pub(crate) struct Meta {
    /// A POSIX queue's priority.
    pub(crate) priority: Option<u32>,
    /// A System V queue's message type.
    pub(crate) mtype: Option<i64>,
    /// A datagram's sender.
    pub(crate) from: Option<String>,
}

/// Where `recv` writes: stdout, or a file created when the first bytes arrive.
pub(crate) struct Sink {
    format: Format,
    path: Option<PathBuf>,
    out: Option<Box<dyn Write>>,
}

impl Sink {
    pub(crate) fn new(format: Format, path: Option<PathBuf>) -> Sink {
        Sink {
            format,
            path,
            out: None,
        }
    }

    pub(crate) fn format(&self) -> Format {
        self.format
    }

    fn out(&mut self) -> anyhow::Result<&mut Box<dyn Write>> {
        if self.out.is_none() {
            let out: Box<dyn Write> = match &self.path {
                Some(path) => Box::new(
                    File::create(path)
                        .with_context(|| format!("create the output file {}", path.display()))?,
                ),
                None => Box::new(io::stdout()),
            };
            self.out = Some(out);
        }
        Ok(self.out.as_mut().expect("just set"))
    }

    /// Writes one message in the sink's format and flushes it, so a pipeline sees each
    /// message as it arrives.
    pub(crate) fn message(&mut self, data: &[u8], meta: &Meta) -> anyhow::Result<()> {
        let format = self.format;
        let out = self.out()?;
        match format {
            Format::Raw => out.write_all(data)?,
            Format::Lines => {
                out.write_all(data)?;
                out.write_all(b"\n")?;
            }
            Format::Hex => {
                out.write_all(hex(data).as_bytes())?;
                out.write_all(b"\n")?;
            }
            Format::Json => {
                let mut line = serde_json::to_string(&json_message(data, meta))?;
                line.push('\n');
                out.write_all(line.as_bytes())?;
            }
        }
        out.flush()?;
        Ok(())
    }

    /// Writes bytes of a stream as they come (raw).
    pub(crate) fn bytes(&mut self, data: &[u8]) -> anyhow::Result<()> {
        let out = self.out()?;
        out.write_all(data)?;
        out.flush()?;
        Ok(())
    }
}

/// Whether `err` is stdout or the output file refusing more (`recv … | head -1`): the
/// reader has what it wanted, and the command ends quietly.
pub(crate) fn is_closed_output(err: &anyhow::Error) -> bool {
    err.downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

/// `data` as lowercase hex digits.
pub(crate) fn hex(data: &[u8]) -> String {
    let mut s = String::with_capacity(2 * data.len());
    for b in data {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// One message as JSON: `{"len", "text" | "hex", "priority"?, "type"?, "from"?}`.
pub(crate) fn json_message(data: &[u8], meta: &Meta) -> Value {
    let mut m = Map::new();
    m.insert("len".into(), json!(data.len()));
    match std::str::from_utf8(data) {
        Ok(text) => m.insert("text".into(), json!(text)),
        Err(_) => m.insert("hex".into(), json!(hex(data))),
    };
    if let Some(p) = meta.priority {
        m.insert("priority".into(), json!(p));
    }
    if let Some(t) = meta.mtype {
        m.insert("type".into(), json!(t));
    }
    if let Some(from) = &meta.from {
        m.insert("from".into(), json!(from));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(text: &'static [u8], lines: bool, count: u64) -> Input {
        Input {
            source: Source::Reader(Box::new(text)),
            lines,
            count,
        }
    }

    fn messages(mut input: Input) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        input
            .each(None, |m| {
                got.push(m.to_vec());
                Ok(())
            })
            .unwrap();
        got
    }

    #[test]
    fn inputs_split_into_messages() {
        assert_eq!(messages(reader(b"a\nb\n", true, 1)), [b"a", b"b"]);
        assert_eq!(messages(reader(b"a\nb", true, 1)), [b"a", b"b"]);
        assert_eq!(messages(reader(b"a\nb\n", false, 1)), [b"a\nb\n".to_vec()]);
        assert_eq!(messages(reader(b"a\n\nb\n", true, 2)).len(), 6);
        let args = Input::new(vec!["x".into(), "yz".into()], None, false, 2).unwrap();
        assert_eq!(
            messages(args),
            [b"x".to_vec(), b"yz".to_vec(), b"x".to_vec(), b"yz".to_vec()]
        );
    }

    #[test]
    fn limits_are_checked_before_anything_is_sent() {
        let mut input = Input::new(vec!["ok".into(), "too long".into()], None, false, 1).unwrap();
        let mut sent = 0;
        let err = input
            .each(Some(&Limit::new(4, "the limit")), |_| {
                sent += 1;
                Ok(())
            })
            .unwrap_err();
        assert_eq!(sent, 0);
        assert_eq!(
            err.to_string(),
            "a message of 8 bytes is over the limit, 4 bytes; 0 message(s) sent"
        );
    }

    #[test]
    fn streams_get_newlines_after_arguments_and_lines_only() {
        let mut out = Vec::new();
        let mut args = Input::new(vec!["hi".into(), "there".into()], None, false, 1).unwrap();
        assert_eq!(args.copy_to(&mut out).unwrap(), 9);
        assert_eq!(out, b"hi\nthere\n");
        let mut out = Vec::new();
        reader(b"raw\x00bytes", false, 1).copy_to(&mut out).unwrap();
        assert_eq!(out, b"raw\x00bytes");
        let mut out = Vec::new();
        reader(b"a\nb", true, 1).copy_to(&mut out).unwrap();
        assert_eq!(out, b"a\nb\n");
    }

    #[test]
    fn json_messages_say_text_or_hex() {
        let meta = Meta {
            priority: Some(3),
            ..Meta::default()
        };
        assert_eq!(
            json_message(b"hi", &meta),
            json!({"len": 2, "text": "hi", "priority": 3})
        );
        assert_eq!(
            json_message(&[0xff, 0], &Meta::default()),
            json!({"len": 2, "hex": "ff00"})
        );
    }
}
