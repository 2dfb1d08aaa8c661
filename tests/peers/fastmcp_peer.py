#!/usr/bin/env python3
"""A FastMCP server (PyPI `fastmcp`, pinned in requirements.lock.txt) that toolmesh's
interop tests talk to.

  stdio: python fastmcp_peer.py
  HTTP:  python fastmcp_peer.py --http --port PORT   # -> http://127.0.0.1:PORT/mcp
"""
import argparse

import anyio
from fastmcp import Context, FastMCP
from fastmcp.exceptions import ToolError

mcp = FastMCP("toolmesh-python-peer")


@mcp.tool
def echo(message: str) -> str:
    """Return the message unchanged."""
    return message


@mcp.tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@mcp.tool
def fail(reason: str = "asked to fail") -> str:
    """Fail with a tool error."""
    raise ToolError(reason)


@mcp.tool
async def count(n: int = 3, ctx: Context = None) -> str:
    """Count to n, reporting progress at each step."""
    for i in range(1, n + 1):
        await ctx.report_progress(i, n)
        await anyio.sleep(0.01)
    return f"counted to {n}"


@mcp.resource("peer://greeting")
def greeting() -> str:
    """A static text resource."""
    return "hello from python"


@mcp.prompt
def review(code: str) -> str:
    """Ask for a review."""
    return f"Please review:\n{code}"


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", action="store_true")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    if a.http:
        mcp.run(transport="http", host="127.0.0.1", port=a.port, path="/mcp", show_banner=False)
    else:
        mcp.run(transport="stdio", show_banner=False)
