//! Venue layout: sections, rows and the seat numbering shared by every service.
//!
//! Every reserved seat of a venue has a dense number (`seat_no`): sections in display
//! order, then rows, then seats. Commands, seat rows and the compact seat map all use it;
//! people and the API use readable seat ids `"{section}-{row}-{seat}"` (e.g. `"A12-3-17"`).
//! Translating between the two needs only the layout, so the gateway validates seat ids
//! without touching the seat table.

use serde::{Deserialize, Serialize};

use crate::ids::SectionId;
use crate::seating::{PriceCategory, SeatAttribute, SeatAttributes, SeatRange};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SectionKind {
    /// Numbered seats in rows.
    Reserved,
    /// Standing or unnumbered: a capacity counter.
    GeneralAdmission,
}

impl SectionKind {
    pub fn as_db(self) -> &'static str {
        match self {
            SectionKind::Reserved => "reserved",
            SectionKind::GeneralAdmission => "general_admission",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "reserved" => Some(SectionKind::Reserved),
            "general_admission" => Some(SectionKind::GeneralAdmission),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionLayout {
    pub id: SectionId,
    pub code: String,
    pub name: String,
    pub kind: SectionKind,
    pub rows: i32,
    pub seats_per_row: i32,
    pub first_seat_no: i32,
    pub capacity: i32,
    pub price_cents: i64,
}

impl SectionLayout {
    pub fn is_reserved(&self) -> bool {
        self.kind == SectionKind::Reserved
    }

    /// seat_no of (row, seat), both 1-based; None outside the section.
    pub fn seat_no(&self, row: i32, seat: i32) -> Option<i32> {
        (self.is_reserved()
            && (1..=self.rows).contains(&row)
            && (1..=self.seats_per_row).contains(&seat))
        .then(|| self.first_seat_no + (row - 1) * self.seats_per_row + (seat - 1))
    }

    /// (row, seat), both 1-based, of a seat_no inside this section.
    pub fn position(&self, seat_no: i32) -> Option<(i32, i32)> {
        let offset = seat_no - self.first_seat_no;
        (self.is_reserved() && (0..self.capacity).contains(&offset)).then(|| {
            (
                offset / self.seats_per_row + 1,
                offset % self.seats_per_row + 1,
            )
        })
    }

    pub fn contains(&self, seat_no: i32) -> bool {
        self.position(seat_no).is_some()
    }
}

/// The sections of one venue, in display order.
#[derive(Debug, Clone, Default)]
pub struct VenueLayout {
    sections: Vec<SectionLayout>,
    /// Indices into `sections` of the reserved ones, ordered by first_seat_no.
    by_seat_no: Vec<usize>,
    /// The venue's price categories, in the organiser's order.
    categories: Vec<PriceCategory>,
    /// The organiser's seat ranges per reserved section (the API's compact form).
    ranges: Vec<(SectionId, Vec<SeatRange>)>,
    /// Per seat_no: its attributes (empty when no range has any).
    seat_attributes: Vec<SeatAttributes>,
    /// Per seat_no: 1 + index of its price category, 0 for the section's price (empty
    /// when no range names a category).
    seat_category: Vec<u16>,
}

impl VenueLayout {
    pub fn new(mut sections: Vec<SectionLayout>) -> Self {
        sections.sort_by_key(|s| (s.first_seat_no, s.code.clone()));
        let by_seat_no = sections
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_reserved())
            .map(|(i, _)| i)
            .collect();
        Self {
            sections,
            by_seat_no,
            ..Self::default()
        }
    }

    /// The layout with its price categories and seat ranges, expanded to one attribute
    /// byte and one category index per seat. Ranges outside their section, of unknown
    /// sections or naming unknown categories are ignored: the API refuses them before
    /// they are stored.
    pub fn with_seating(
        mut self,
        categories: Vec<PriceCategory>,
        ranges: Vec<(SectionId, Vec<SeatRange>)>,
    ) -> Self {
        let seats = self
            .by_seat_no
            .iter()
            .map(|&i| self.sections[i].first_seat_no + self.sections[i].capacity)
            .max()
            .unwrap_or(0)
            .max(0) as usize;
        let mut attributes = vec![SeatAttributes::default(); seats];
        let mut category = vec![0u16; seats];
        let (mut any_attribute, mut any_category) = (false, false);
        for (section_id, section_ranges) in &ranges {
            let Some(section) = self.section_by_id(*section_id).filter(|s| s.is_reserved()) else {
                continue;
            };
            for range in section_ranges {
                let cat = range
                    .price_category
                    .as_ref()
                    .and_then(|code| categories.iter().position(|c| &c.code == code));
                for row in range.rows[0].max(1)..=range.rows[1].min(section.rows) {
                    for seat in range.seats[0].max(1)..=range.seats[1].min(section.seats_per_row) {
                        let Some(no) = section.seat_no(row, seat) else {
                            continue;
                        };
                        let no = no as usize;
                        for a in &range.attributes {
                            attributes[no] = attributes[no].with(*a);
                            any_attribute = true;
                        }
                        if let Some(i) = cat {
                            category[no] = i as u16 + 1;
                            any_category = true;
                        }
                    }
                }
            }
        }
        self.seat_attributes = if any_attribute {
            attributes
        } else {
            Vec::new()
        };
        self.seat_category = if any_category { category } else { Vec::new() };
        self.categories = categories;
        self.ranges = ranges;
        self
    }

    pub fn price_categories(&self) -> &[PriceCategory] {
        &self.categories
    }

    /// The organiser's ranges of one section (empty if none).
    pub fn seat_ranges(&self, section_id: SectionId) -> &[SeatRange] {
        self.ranges
            .iter()
            .find(|(id, _)| *id == section_id)
            .map_or(&[], |(_, r)| r.as_slice())
    }

    /// Does any seat of the venue have attributes or a price category of its own?
    pub fn has_seating_details(&self) -> bool {
        !self.seat_attributes.is_empty() || !self.seat_category.is_empty()
    }

    /// A seat's attributes (none for seats outside the venue).
    pub fn attributes(&self, seat_no: i32) -> SeatAttributes {
        usize::try_from(seat_no)
            .ok()
            .and_then(|i| self.seat_attributes.get(i))
            .copied()
            .unwrap_or_default()
    }

    /// Does any seat of `section` have `attribute`?
    pub fn section_has(&self, section: &SectionLayout, attribute: SeatAttribute) -> bool {
        section.is_reserved()
            && (section.first_seat_no..section.first_seat_no + section.capacity)
                .any(|s| self.attributes(s).has(attribute))
    }

    /// A reserved seat's price: its category's, else its section's.
    pub fn seat_price(&self, seat_no: i32) -> Option<i64> {
        let section = self.section_of(seat_no)?;
        let category = usize::try_from(seat_no)
            .ok()
            .and_then(|i| self.seat_category.get(i))
            .copied()
            .unwrap_or(0);
        Some(match category {
            0 => section.price_cents,
            c => self
                .categories
                .get(usize::from(c) - 1)
                .map_or(section.price_cents, |c| c.price_cents),
        })
    }

    /// What a hold costs: its seats' prices, or its general-admission section's price per
    /// place.
    pub fn hold_total(
        &self,
        seat_nos: &[i32],
        ga_section: Option<SectionId>,
        quantity: i32,
    ) -> i64 {
        match ga_section {
            Some(id) => self
                .section_by_id(id)
                .map_or(0, |s| s.price_cents * i64::from(quantity)),
            None => seat_nos.iter().filter_map(|n| self.seat_price(*n)).sum(),
        }
    }

    /// The seat to the left of `seat_no` in its block: same row, no aisle between.
    pub fn block_left(&self, seat_no: i32) -> Option<i32> {
        let (_, seat) = self.section_of(seat_no)?.position(seat_no)?;
        (seat > 1 && !self.aisle_between(seat_no - 1, seat_no)).then_some(seat_no - 1)
    }

    /// The seat to the right of `seat_no` in its block.
    pub fn block_right(&self, seat_no: i32) -> Option<i32> {
        let section = self.section_of(seat_no)?;
        let (_, seat) = section.position(seat_no)?;
        (seat < section.seats_per_row && !self.aisle_between(seat_no, seat_no + 1))
            .then_some(seat_no + 1)
    }

    fn aisle_between(&self, left: i32, right: i32) -> bool {
        self.attributes(left).has(SeatAttribute::Aisle)
            && self.attributes(right).has(SeatAttribute::Aisle)
    }

    pub fn sections(&self) -> &[SectionLayout] {
        &self.sections
    }

    pub fn section_by_code(&self, code: &str) -> Option<&SectionLayout> {
        self.sections.iter().find(|s| s.code == code)
    }

    pub fn section_by_id(&self, id: SectionId) -> Option<&SectionLayout> {
        self.sections.iter().find(|s| s.id == id)
    }

    /// Total number of reserved seats (seat_no runs from 0 to this, exclusive).
    pub fn reserved_seats(&self) -> i32 {
        self.by_seat_no
            .iter()
            .map(|&i| self.sections[i].capacity)
            .sum()
    }

    /// The reserved section that holds `seat_no`.
    pub fn section_of(&self, seat_no: i32) -> Option<&SectionLayout> {
        let idx = self
            .by_seat_no
            .partition_point(|&i| self.sections[i].first_seat_no <= seat_no);
        let section = &self.sections[*self.by_seat_no.get(idx.checked_sub(1)?)?];
        section.contains(seat_no).then_some(section)
    }

    /// The readable id of a seat: `"{section}-{row}-{seat}"`.
    pub fn seat_label(&self, seat_no: i32) -> Option<String> {
        let section = self.section_of(seat_no)?;
        let (row, seat) = section.position(seat_no)?;
        Some(format!("{}-{}-{}", section.code, row, seat))
    }

    /// Parse a readable seat id back to its seat_no; None for anything not in this venue.
    pub fn parse_seat_label(&self, label: &str) -> Option<i32> {
        let mut parts = label.rsplitn(3, '-');
        let seat: i32 = parts.next()?.parse().ok()?;
        let row: i32 = parts.next()?.parse().ok()?;
        let code = parts.next()?;
        self.section_by_code(code)?.seat_no(row, seat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(code: &str, first: i32, rows: i32, per_row: i32) -> SectionLayout {
        SectionLayout {
            id: SectionId::new(),
            code: code.into(),
            name: code.into(),
            kind: SectionKind::Reserved,
            rows,
            seats_per_row: per_row,
            first_seat_no: first,
            capacity: rows * per_row,
            price_cents: 100,
        }
    }

    #[test]
    fn labels_round_trip_across_sections() {
        let layout = VenueLayout::new(vec![section("B", 6, 2, 2), section("A", 0, 2, 3)]);
        assert_eq!(layout.reserved_seats(), 10);
        for seat_no in 0..10 {
            let label = layout.seat_label(seat_no).unwrap();
            assert_eq!(layout.parse_seat_label(&label), Some(seat_no), "{label}");
        }
        assert_eq!(layout.seat_label(0).as_deref(), Some("A-1-1"));
        assert_eq!(layout.seat_label(5).as_deref(), Some("A-2-3"));
        assert_eq!(layout.seat_label(6).as_deref(), Some("B-1-1"));
        assert_eq!(layout.seat_label(10), None);
        assert_eq!(layout.seat_label(-1), None);
    }

    #[test]
    fn garbage_labels_are_rejected() {
        let layout = VenueLayout::new(vec![section("A", 0, 2, 3)]);
        for bad in [
            "", "A", "A-1", "A-0-1", "A-3-1", "A-1-4", "Z-1-1", "A-1-1-1", "A--1-1", "A-x-1",
            "-1-1",
        ] {
            assert_eq!(layout.parse_seat_label(bad), None, "{bad}");
        }
    }
}
