//! tongban web slice
