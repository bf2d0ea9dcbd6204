//! Docker's multiplexed stream format (`pkg/stdcopy`): without a TTY, attach,
//! exec and logs carry stdout and stderr on one connection as frames with an
//! 8-byte header — stream byte (0 stdin, 1 stdout, 2 stderr, 3 system error),
//! three zero bytes, big-endian u32 payload length — followed by the payload.

/// Which stream a payload belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Why a stream could not be demultiplexed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DemuxError {
    /// A frame of stream 3: the daemon reports an error in-band.
    #[error("error from daemon in stream: {0}")]
    Daemon(String),
    /// A header with a stream byte docker does not define.
    #[error("Unrecognized input header: {0}")]
    BadHeader(u8),
}

/// A push parser: feed it bytes as they arrive, it calls back with payload
/// slices and their stream, never copying payloads (except system errors,
/// which are reported whole).
#[derive(Debug, Default)]
pub struct Demuxer {
    header: [u8; 8],
    header_len: usize,
    /// Bytes left in the current frame's payload.
    remaining: usize,
    stream: u8,
    system_error: Vec<u8>,
}

impl Demuxer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `data`; `out` receives each payload piece. Errors from `out`
    /// are passed through as [`std::io::Error`]; format errors as
    /// `InvalidData` wrapping a [`DemuxError`].
    pub fn push(
        &mut self,
        mut data: &[u8],
        out: &mut impl FnMut(Stream, &[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        while !data.is_empty() {
            if self.remaining == 0 && self.header_len < 8 {
                let n = (8 - self.header_len).min(data.len());
                self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
                self.header_len += n;
                data = &data[n..];
                if self.header_len < 8 {
                    break;
                }
                self.stream = self.header[0];
                if self.stream > 3 {
                    return Err(invalid(DemuxError::BadHeader(self.stream)));
                }
                self.remaining =
                    u32::from_be_bytes([self.header[4], self.header[5], self.header[6], self.header[7]]) as usize;
                self.header_len = 0;
                if self.remaining == 0 {
                    continue;
                }
            }
            let n = self.remaining.min(data.len());
            let (chunk, rest) = data.split_at(n);
            data = rest;
            self.remaining -= n;
            match self.stream {
                // docker's StdCopy writes stdin frames to stdout.
                0 | 1 => out(Stream::Stdout, chunk)?,
                2 => out(Stream::Stderr, chunk)?,
                _ => {
                    self.system_error.extend_from_slice(chunk);
                    if self.remaining == 0 {
                        let msg = String::from_utf8_lossy(&self.system_error).into_owned();
                        self.system_error.clear();
                        return Err(invalid(DemuxError::Daemon(msg)));
                    }
                }
            }
        }
        Ok(())
    }
}

fn invalid(e: DemuxError) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e)
}

/// Builds one frame (tests, fake daemons).
pub fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.push(stream);
    v.extend_from_slice(&[0, 0, 0]);
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> (Vec<u8>, Vec<u8>, std::io::Result<()>) {
        let mut d = Demuxer::new();
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let mut res = Ok(());
        for c in chunks {
            res = d.push(c, &mut |s, b| {
                match s {
                    Stream::Stdout => o.extend_from_slice(b),
                    Stream::Stderr => e.extend_from_slice(b),
                }
                Ok(())
            });
            if res.is_err() {
                break;
            }
        }
        (o, e, res)
    }

    #[test]
    fn whole_frames() {
        let mut all = frame(1, b"out\n");
        all.extend(frame(2, b"err\n"));
        all.extend(frame(1, b""));
        all.extend(frame(0, b"in"));
        let (o, e, r) = run(&[&all]);
        assert!(r.is_ok());
        assert_eq!(o, b"out\nin");
        assert_eq!(e, b"err\n");
    }

    #[test]
    fn frames_split_anywhere() {
        let mut all = frame(1, b"hello world");
        all.extend(frame(2, b"oops"));
        for cut in 0..all.len() {
            let (a, b) = all.split_at(cut);
            let (o, e, r) = run(&[a, b]);
            assert!(r.is_ok());
            assert_eq!(o, b"hello world", "cut at {cut}");
            assert_eq!(e, b"oops");
        }
        let singles: Vec<&[u8]> = all.chunks(1).collect();
        let (o, e, _) = run(&singles);
        assert_eq!((o.as_slice(), e.as_slice()), (&b"hello world"[..], &b"oops"[..]));
    }

    #[test]
    fn system_errors_and_bad_headers() {
        let (_, _, r) = run(&[&frame(3, b"boom")]);
        let err = r.unwrap_err();
        assert_eq!(err.to_string(), "error from daemon in stream: boom");
        let (_, _, r) = run(&[&[7, 0, 0, 0, 0, 0, 0, 1, b'x']]);
        assert_eq!(r.unwrap_err().to_string(), "Unrecognized input header: 7");
    }
}
