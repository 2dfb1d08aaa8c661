//! placeholder until the fixture lands
