//! `keyboard`: the scancode decoder and the scancode stream.

use super::{check, yield_now, yield_until};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use futures_util::{FutureExt, StreamExt};
use spin::Mutex;

use crate::shell::keys::{Decoder, Key};
use crate::stats;
use crate::task::executor::Spawner;
use crate::task::keyboard::{self, ScancodeStream};

fn decode(decoder: &mut Decoder, bytes: &[u8]) -> Vec<Key> {
    bytes.iter().filter_map(|&b| decoder.feed(b)).collect()
}

pub(super) async fn keyboard_test() {
    use Key::*;
    let mut d = Decoder::new();
    // Scancode set 1 (what the i8042 delivers with translation on).
    check!(
        decode(&mut d, &[0x23, 0xA3, 0x17, 0x97]) == [Char('h'), Char('i')],
        "plain letters"
    );
    check!(
        decode(&mut d, &[0x2A, 0x23, 0xA3, 0xAA, 0x17, 0x97]) == [Char('H'), Char('i')],
        "left Shift applies while held"
    );
    check!(
        decode(&mut d, &[0x36, 0x02, 0x82, 0x33, 0xB3, 0xB6]) == [Char('!'), Char('<')],
        "right Shift gives symbols: ! <"
    );
    check!(
        decode(&mut d, &[0x02, 0x82, 0x33, 0xB3, 0x39, 0xB9, 0x0C, 0x8C])
            == [Char('1'), Char(','), Char(' '), Char('-')],
        "unshifted digits and punctuation"
    );
    check!(
        decode(&mut d, &[0x3A, 0xBA, 0x1E, 0x9E, 0x02, 0x82]) == [Char('A'), Char('1')],
        "Caps Lock upper-cases letters only"
    );
    check!(
        decode(&mut d, &[0x2A, 0x1E, 0x9E, 0xAA]) == [Char('a')],
        "Shift with Caps Lock gives lower case"
    );
    check!(
        decode(&mut d, &[0x3A, 0xBA, 0x1E, 0x9E]) == [Char('a')],
        "Caps Lock toggles off"
    );
    check!(
        decode(&mut d, &[0x1D, 0x2E, 0xAE, 0x9D]) == [Interrupt],
        "left Ctrl+C is an interrupt"
    );
    check!(
        decode(&mut d, &[0xE0, 0x1D, 0x2E, 0xAE, 0xE0, 0x9D]) == [Interrupt],
        "right Ctrl+C is an interrupt"
    );
    check!(
        decode(&mut d, &[0x2E, 0xAE]) == [Char('c')],
        "c after Ctrl is released"
    );
    check!(
        decode(&mut d, &[0x1D, 0x20, 0xA0, 0x9D]).is_empty(),
        "other Ctrl letters are ignored"
    );
    check!(
        decode(
            &mut d,
            &[0x1D, 0x23, 0xA3, 0x24, 0xA4, 0x32, 0xB2, 0x17, 0x97, 0x9D]
        )
        .is_empty(),
        "Ctrl+H, Ctrl+J, Ctrl+M and Ctrl+I are ignored (not Backspace/Enter/Tab)"
    );
    check!(
        decode(&mut d, &[0x0E, 0x8E, 0x1C, 0x9C]) == [Backspace, Enter],
        "Backspace and Enter"
    );
    check!(
        decode(
            &mut d,
            &[0xE0, 0x4B, 0xE0, 0xCB, 0xE0, 0x48, 0xE0, 0xC8, 0x0F, 0x8F, 0x01, 0x81, 0x3B, 0xBB]
        )
        .is_empty(),
        "arrows, Tab, Escape and F1 are ignored"
    );
    check!(
        decode(&mut d, &[0xFA, 0x1E, 0x9E]) == [Char('a')],
        "a stray ACK byte is skipped"
    );

    // The queue and stream, fed through the IRQ path's push.
    let mut stream = ScancodeStream::take().expect("stream free");
    check!(
        ScancodeStream::take().is_none(),
        "the scancode stream has one consumer"
    );
    check!(
        stream.next().now_or_never().is_none(),
        "empty queue: the stream is pending"
    );
    let consumer = Arc::new(AtomicUsize::new(0));
    let counter = consumer.clone();
    // Drop our stream, let a separate task consume.
    drop(stream);
    Spawner
        .spawn(async move {
            let mut stream = ScancodeStream::take().expect("stream free");
            let mut decoder = Decoder::new();
            let mut text = String::new();
            // Exactly the 14 bytes pushed below, then release the stream.
            while let Some(byte) = stream.next().await {
                if let Some(Key::Char(c)) = decoder.feed(byte) {
                    text.push(c);
                }
                if counter.fetch_add(1, Ordering::SeqCst) + 1 == 14 {
                    break;
                }
            }
            *TYPED.lock() = text;
        })
        .expect("spawn consumer");
    static TYPED: Mutex<String> = Mutex::new(String::new());
    yield_now().await; // the consumer is now waiting on the stream
    let polls_before = stats::POLLS.get();
    for _ in 0..3 {
        yield_now().await;
    }
    check!(
        stats::POLLS.get() - polls_before == 3,
        "a waiting stream consumer is not polled without scancodes"
    );
    for &byte in &[
        0x2A, 0x23, 0xA3, 0xAA, 0x12, 0x92, 0x26, 0xA6, 0x26, 0xA6, 0x18, 0x98, 0x1C, 0x9C,
    ] {
        keyboard::push_scancode(byte);
    }
    let done = yield_until(20, || consumer.load(Ordering::SeqCst) == 14).await;
    check!(
        done && *TYPED.lock() == "Hello",
        "pushed scancodes wake the consumer, decoded {:?}",
        *TYPED.lock()
    );

    // Overflow: counted, never a panic.
    let dropped = stats::SCANCODES_DROPPED.get();
    for _ in 0..keyboard::QUEUE_CAPACITY + 10 {
        keyboard::push_scancode(0x1E);
    }
    check!(
        stats::SCANCODES_DROPPED.get() == dropped + 10,
        "a full queue drops and counts (10 of {} extra)",
        keyboard::QUEUE_CAPACITY + 10
    );
    let mut stream = ScancodeStream::take().expect("stream free");
    let mut drained = 0;
    while stream.next().now_or_never().flatten().is_some() {
        drained += 1;
    }
    check!(
        drained == keyboard::QUEUE_CAPACITY,
        "the queue held {drained} scancodes"
    );
}
