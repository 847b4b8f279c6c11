//! Legacy PC device models.
pub mod debug_exit;
pub mod i8042;
pub mod pic;
pub mod pit;
pub mod rtc;
pub mod serial;
