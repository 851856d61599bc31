"""What hookrelay may send where: the address rules (`rules`, with the IANA registries in
`special_ranges`), the HTTP client that enforces them on every connection (`outbound`), and the
headers an endpoint may not set (`headers`)."""
