//! Verified chunk transfer of large files and blobs (issue 6, in progress): so far the
//! receiving side's verification state machine. The protocol is in
//! `docs/adr/0012-transfer.md`.

pub mod verify;
