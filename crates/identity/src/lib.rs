//! tongban identity slice
