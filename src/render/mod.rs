//! Rendering for people: coloured token strips, graph drawings, tables.

pub mod examples;
