//! Cooperative multitasking: the executor and the futures interrupts wake
//! (timers, the scancode stream).

#[cfg(target_os = "none")]
pub mod executor;
#[cfg(target_os = "none")]
pub mod keyboard;
pub mod slots;
pub mod timer;
pub mod timer_queue;
