"""The ground floor: what every other part of the zoo builds on, importing nothing else of it."""
