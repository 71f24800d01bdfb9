"""Event statistics of a small service: the coverage gate's fixture. Its tests cover
summarise() and rate(), and leave busiest_hour() and the empty-input branch of rate() out."""


def summarise(events):
    """Count of events per type."""
    counts = {}
    for event in events:
        kind = event["type"]
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def rate(count, seconds):
    """Events per second."""
    if seconds <= 0:
        raise ValueError("seconds must be more than 0")
    return count / seconds


def busiest_hour(events):
    """The hour of the day with the most events."""
    hours = {}
    for event in events:
        hour = event["hour"]
        hours[hour] = hours.get(hour, 0) + 1
    best = None
    for hour, count in sorted(hours.items()):
        if best is None or count > hours[best]:
            best = hour
    return best
