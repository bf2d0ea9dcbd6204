//! Byte pumps between hijacked API connections and shim streams.

use super::Io;

/// Copies both ways between an API client's hijacked connection and a shim
/// stream. The client's EOF half-closes the shim side (stdin EOF); the
/// shim's EOF ends the client's stream.
pub(super) async fn pump(io: Io, stream: std::os::unix::net::UnixStream) {
    pump_then(io, stream, async {}).await
}

/// [`pump`], running `before_close` after the shim's output ended and
/// before the client's stream is closed.
pub(super) async fn pump_then(
    io: Io,
    stream: std::os::unix::net::UnixStream,
    before_close: impl std::future::Future<Output = ()>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let Ok(shim) = tokio::net::UnixStream::from_std(stream) else { return };
    let (mut sr, mut sw) = shim.into_split();
    let (mut cr, mut cw) = tokio::io::split(io);
    let to_shim = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = sw.shutdown().await;
    };
    let from_shim = async move {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
        let _ = cw.flush().await;
        before_close.await;
        let _ = cw.shutdown().await;
    };
    // Output decides when the stream ends; input may stop earlier.
    let to = tokio::spawn(to_shim);
    from_shim.await;
    to.abort();
}
