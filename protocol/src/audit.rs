//! The list audit (SPEC Section 15): the operator proves to a list
//! organisation that every slot of a table is either `α·H(y)` for an entry
//! y of the organisation's own list, or a filler the organisation
//! recomputes; the organisation then co-signs the table's statement.

pub mod dleq;
