//! What every stored SCIM resource shares, written once so that users,
//! groups and whatever comes next cannot drift apart: the row lock and the
//! etag precondition, list pages with their total, how a write's unique
//! violation becomes a domain error, and the errors all of them can meet.
//! A resource says only what differs by implementing [`StoredResource`].

mod bag;
mod error;
mod list;
pub(crate) mod paging;
mod resource;

pub(crate) use bag::{sent_bag, stored_bag};
pub(crate) use error::{ResourceError, wraps_resource_error};
pub(crate) use list::{ListPage, ListRequest, Segments, list};
pub(crate) use resource::{StoredResource, get, lock, not_found, parse_id, required, write_error};
