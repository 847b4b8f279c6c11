//! Legacy PC device models.
pub mod i8042;
pub mod pic;
pub mod pit;
