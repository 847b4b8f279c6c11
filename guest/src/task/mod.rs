//! Cooperative multitasking: the executor and the futures interrupts wake
//! (timers, the scancode and serial streams).

#[cfg(target_os = "none")]
pub mod byte_queue;
#[cfg(target_os = "none")]
pub mod executor;
#[cfg(target_os = "none")]
pub mod keyboard;
pub mod ring;
#[cfg(target_os = "none")]
pub mod serial;
pub mod slots;
pub mod timer;
pub mod timer_queue;
