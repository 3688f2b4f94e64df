"""The outcome of one pyarrow Flight call, as the security tests' peer clients report it."""
import pyarrow.flight as flight


def outcome(fn, detail=0):
    """Runs fn(): "ok", "unauthenticated", "unauthorized", or "error:<type>" (with the first
    `detail` characters of the error's first line when detail > 0)."""
    try:
        fn()
        return "ok"
    except flight.FlightUnauthenticatedError:
        return "unauthenticated"
    except flight.FlightUnauthorizedError:
        return "unauthorized"
    except flight.FlightError as e:
        text = "error:" + type(e).__name__
        return text + ":" + str(e).splitlines()[0][:detail] if detail > 0 else text
