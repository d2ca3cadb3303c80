//! tongban authz slice
