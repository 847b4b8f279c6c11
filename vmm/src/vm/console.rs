//! Where the machine sends COM1's output: the serial tap (which `expect`,
//! QMP clients and tests watch) and, for the `vmm` command, stdout or the
//! `--serial` backend's queue.
//!
//! Neither blocks on I/O: the tap is an in-memory ring, and stdout is
//! reached through a [`StdoutSink`], a queue that a writer thread drains
//! (see `stdout_sink` for why a queue rather than UART backpressure). The
//! tap is fed first and directly, so `expect` sees every byte at once
//! whatever stdout does.
use std::io::{self, Write};

use crate::stdout_sink::StdoutSink;

use super::SerialTap;

/// COM1's output writer: the tap, then the stdout queue (each byte queued as
/// it comes, and the writer woken, so interactive output is never held back).
pub(crate) struct Console {
    stdout: Option<&'static StdoutSink>,
    sink: Option<StdoutSink>,
    tap: SerialTap,
    /// Told of every transmitted byte (it ends a key-to-echo wait).
    key_echo: std::sync::Arc<super::key_echo::Probe>,
}

impl Console {
    /// Output to `tap`, with `to_stdout` to the process's stdout, and to
    /// `sink` if given; every write is reported to `key_echo`.
    pub fn new(
        tap: SerialTap,
        to_stdout: bool,
        sink: Option<StdoutSink>,
        key_echo: std::sync::Arc<super::key_echo::Probe>,
    ) -> Self {
        let stdout = if to_stdout {
            StdoutSink::stdout()
        } else {
            None
        };
        Self {
            stdout,
            sink,
            tap,
            key_echo,
        }
    }
}

impl Write for Console {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.key_echo.transmitted();
        self.tap.push(data);
        if let Some(stdout) = self.stdout {
            stdout.push(data);
        }
        if let Some(sink) = &self.sink {
            sink.push(data);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // The writer thread writes as soon as bytes are queued.
        Ok(())
    }
}
