//! Integration tests of the native tools and their MCP server: real files in temp
//! directories, real HTTP servers on 127.0.0.1, real rmcp clients.

mod arxiv;
mod calculator;
mod filesystem;
mod http_fetch;
mod serve;
mod support;
mod time;
mod web_search;
