"""Binance's error answers: code, message and HTTP status, raised inside and rendered at the edge."""

from __future__ import annotations


class SimError(Exception):
    """A request the exchange refuses, rendered as ``{"code": ..., "msg": ...}`` with ``status``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


UNKNOWN_MSG = "An unknown error occurred while processing the request."

KNOWN_MESSAGES: dict[int, str] = {
    -1000: UNKNOWN_MSG,
    -1001: "Internal error; unable to process your request. Please try again.",
    -1003: "Too many requests; please use the websocket for live updates.",
    -1007: "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
    -1021: "Timestamp for this request is outside of the recvWindow.",
    -1022: "Signature for this request is not valid.",
    -1102: "A mandatory parameter was not sent, was empty/null, or malformed.",
    -1111: "Precision is over the maximum defined for this asset.",
    -1115: "Invalid timeInForce.",
    -1116: "Invalid orderType.",
    -1121: "Invalid symbol.",
    -1128: "Combination of optional parameters invalid.",
    -2010: "NEW_ORDER_REJECTED",
    -2011: "Unknown order sent.",
    -2013: "Order does not exist.",
    -2014: "API-key format invalid.",
    -2015: "Invalid API-key, IP, or permissions for action.",
    -2019: "Margin is insufficient.",
    -2021: "Order would immediately trigger.",
    -2022: "ReduceOnly Order is rejected.",
    -2025: "Reach max open order limit.",
    -4003: "Quantity less than or equal to zero.",
    -4045: "Reach max stop order limit.",
    -4116: "ClientOrderId is duplicated.",
    -4120: "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.",
    -4164: "Order's notional must be no smaller than 5 (unless you choose reduce only).",
    -5021: "Due to the order could not be filled immediately, the FOK order has been rejected.",
    -5022: "Due to the order could not be executed as maker, the Post Only order will be rejected.",
    -5040: "The goodTillDate timestamp must be greater than the current time plus 600 seconds and "
    "smaller than 253402300799000.",
}


def known(code: int, status: int = 400) -> SimError:
    """Error ``code`` with Binance's message for it."""
    return SimError(code, KNOWN_MESSAGES.get(code, UNKNOWN_MSG), status)


def mandatory(name: str) -> SimError:
    return SimError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def illegal(name: str) -> SimError:
    legal = "^([0-9]{1,20})(\\.[0-9]{1,20})?$"
    return SimError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")
