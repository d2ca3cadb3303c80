//! tongban audit slice
