// The seatq browser app.
