//! The linker script that lays out the release binary's code by use (`build.rs`,
//! `text-order.txt`); also compiled into the binary's tests.

/// A script laying out `.text`: the listed functions' sections in the list's two groups,
/// then the rest as the default layout has it. One `.text`, not a section of its own:
/// valgrind and other tools take `.text` for the binary's code.
pub(crate) fn linker_script(list: &str) -> String {
    // Each group twice: the functions as named, then the other crates' copies of the
    // generic ones (each crate using a generic instance has its own; which one runs
    // depends on the build's crate graph), placed after so as to follow the named ones.
    fn group(script: &mut String, patterns: &mut Vec<String>) {
        let mut seen = std::collections::HashSet::new();
        let copies: Vec<String> = patterns
            .iter()
            .filter_map(|p| other_copies(p))
            .filter(|p| seen.insert(p.clone()))
            .collect();
        for listed in [std::mem::take(patterns), copies] {
            if !listed.is_empty() {
                script.push_str("    *(");
                // LLVM puts functions it deems cold (`#[cold]`, such as a vector's
                // growth) in `.text.unlikely.<name>`.
                for pattern in listed {
                    script.push_str(&format!(
                        "\n      .text.{pattern}\n      .text.unlikely.{pattern}"
                    ));
                }
                script.push_str(")\n");
            }
        }
    }
    let mut script = String::from("SECTIONS {\n  .text : {\n");
    let mut patterns = Vec::new();
    for name in list.lines().map(str::trim) {
        if MARKERS.contains(&name) {
            group(&mut script, &mut patterns);
            script.push_str(&format!("    *(.text.{name})\n"));
        } else if let Some(pattern) = pattern(name) {
            patterns.push(pattern);
        }
    }
    group(&mut script, &mut patterns);
    script.push_str(
        "    *(.text.unlikely .text.*_unlikely .text.unlikely.*)\
         \n    *(.text.exit .text.exit.*)\
         \n    *(.text.startup .text.startup.*)\
         \n    *(.text.hot .text.hot.*)\
         \n    *(.text .stub .text.* .gnu.linkonce.t.*)\
         \n  }\n}\nINSERT BEFORE .init;\n",
    );
    script
}

/// The functions the markers enclose are start-up's (`src/memory.rs`).
const MARKERS: [&str; 2] = ["toolmesh_startup_text_begin", "toolmesh_startup_text_end"];

/// A section-name pattern for a function `name` of the list, with what varies between
/// builds left open: the crate disambiguators of a v0 name (`Cs<base-62>_` before a crate
/// name), a numeric suffix LTO gave a local copy. The crate a generic instance was
/// instantiated in stays named: each crate using a generic has its own copy, and leaving
/// it open laid out every copy of the large ones (4.4 MB instead of ~2.4). Back-references
/// (`B<base-62>_`) stay too: they are offsets into the name, which move only when a
/// disambiguator's length does (rarely: most have 11 digits). `None` for what is no
/// symbol, and for legacy names (`_ZN…17h<hash>E`), whose instances of a generic function
/// differ only by their hash: `.cargo/config.toml` asks for v0 names.
fn pattern(name: &str) -> Option<String> {
    let symbol_char = |c: char| c.is_ascii_alphanumeric() || "_$.".contains(c);
    if name.is_empty()
        || !name.chars().all(symbol_char)
        || name.starts_with("0x")
        || name.starts_with("_ZN")
    {
        return None;
    }
    let name = name.split('.').next()?;
    if !name.starts_with("_R") {
        return Some(format!("{name}*"));
    }
    let mut pattern = String::new();
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        match crate_disambiguator(rest) {
            Some(len) => {
                pattern.push_str("Cs*_");
                rest = &rest[len..];
            }
            None => {
                pattern.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    pattern.push('*');
    Some(pattern)
}

/// For a `pattern` naming a generic instance, the pattern of the same instance in any
/// crate: without the instantiating crate it ends with (a crate root, or a
/// back-reference to one). `None` for other patterns.
fn other_copies(pattern: &str) -> Option<String> {
    let name = pattern.strip_suffix('*')?;
    let end = match name.rfind("Cs*_") {
        Some(at) if identifier_len(&name[at + 4..]) == Some(name.len() - at - 4) => at,
        _ => {
            let at = name.rfind('B')?;
            let digits = name[at + 1..].strip_suffix('_')?;
            digits
                .chars()
                .all(|c| c.is_ascii_alphanumeric())
                .then_some(at)?
        }
    };
    // Only after the end of generic arguments (`E`): a path alone ends with a name.
    name[..end]
        .ends_with('E')
        .then(|| format!("{}*", &name[..end]))
}

/// The length of the crate disambiguator `Cs<base-62>_` starting `rest`, when a crate
/// name (`<length><name>`) follows it.
fn crate_disambiguator(rest: &str) -> Option<usize> {
    let digits = rest.strip_prefix("Cs")?;
    let end = digits.find('_')?;
    let base62 = &digits[..end];
    let is_base62 = !base62.is_empty() && base62.chars().all(|c| c.is_ascii_alphanumeric());
    (is_base62 && identifier_len(&digits[end + 1..]).is_some()).then_some(2 + end + 1)
}

/// The length of the v0 identifier (`<decimal length><bytes>`) starting `text`.
fn identifier_len(text: &str) -> Option<usize> {
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    let len: usize = text[..digits].parse().ok()?;
    (text.len() >= digits + len).then_some(digits + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_specific_parts_of_names_are_left_open() {
        // A v0 name: crate disambiguators open; an identifier that looks like one is kept.
        assert_eq!(
            pattern("_RNvMs_NtCsgEmfK2I1SDS_4core3numB4_5parse").as_deref(),
            Some("_RNvMs_NtCs*_4core3numB4_5parse*")
        );
        assert_eq!(
            pattern("_RNvNtCs1a_3foo8Csv_data").as_deref(),
            Some("_RNvNtCs*_3foo8Csv_data*")
        );
        // LTO's numeric suffix on a local copy.
        assert_eq!(
            pattern("_RNvNtCs1a_5bytes12static_clone.14811").as_deref(),
            Some("_RNvNtCs*_5bytes12static_clone*")
        );
        // The instantiating crate of a generic instance keeps its name.
        assert_eq!(
            pattern("_RINvNtCs1a_4core3ptr13drop_in_placeNtCs2b_3foo3BarECs3c_10toolmesh_x")
                .as_deref(),
            Some("_RINvNtCs*_4core3ptr13drop_in_placeNtCs*_3foo3BarECs*_10toolmesh_x*")
        );
        assert_eq!(pattern("mi_free").as_deref(), Some("mi_free*"));
        // Legacy names tell a generic function's instances apart only by hash.
        assert_eq!(pattern("_ZN4core3ptr4read17h0123456789abcdefE"), None);
        assert_eq!(pattern("(below main)"), None);
        assert_eq!(pattern("0x000000000060ea60"), None);
    }

    #[test]
    fn other_copies_of_generic_instances() {
        assert_eq!(
            other_copies("_RINvNtCs*_4core3ptr4readReECs*_10toolmesh_x*").as_deref(),
            Some("_RINvNtCs*_4core3ptr4readReE*")
        );
        assert_eq!(
            other_copies("_RINvNtCs*_4core3ptr4readReEB4_*").as_deref(),
            Some("_RINvNtCs*_4core3ptr4readReE*")
        );
        // Not generic: nothing else to match.
        assert_eq!(other_copies("_RNvNtCs*_4core3ptr4read*"), None);
        assert_eq!(other_copies("mi_free*"), None);
    }

    /// Where `needle` starts in `script`; fails the test when it is missing.
    fn at(script: &str, needle: &str) -> usize {
        script
            .find(needle)
            .unwrap_or_else(|| panic!("no `{needle}` in:\n{script}"))
    }

    #[test]
    fn the_script_keeps_the_two_groups_between_the_markers() {
        let list = "_RNvCs1_3hot1a\ntoolmesh_startup_text_begin\n_RNvCs1_4init1b\n\
                    toolmesh_startup_text_end\n";
        let script = linker_script(list);
        let order = [
            ".text._RNvCs*_3hot1a*",
            "*(.text.toolmesh_startup_text_begin)",
            ".text._RNvCs*_4init1b*",
            "*(.text.toolmesh_startup_text_end)",
            "*(.text .stub .text.*",
        ]
        .map(|needle| at(&script, needle));
        assert!(order.is_sorted(), "{script}");
        assert!(!script.contains("*()"), "no empty group: {script}");
        assert!(
            script.trim_end().ends_with("INSERT BEFORE .init;"),
            "{script}"
        );
    }

    #[test]
    fn other_crates_copies_follow_the_named_instance() {
        let list = "_RINvNtCs1_4core3ptr4readReECs2_3hot\ntoolmesh_startup_text_begin\n";
        let script = linker_script(list);
        let order = [
            ".text._RINvNtCs*_4core3ptr4readReECs*_3hot*",
            ".text._RINvNtCs*_4core3ptr4readReE*\n",
            "toolmesh_startup_text_begin",
        ]
        .map(|needle| at(&script, needle));
        assert!(order.is_sorted(), "{script}");
        assert!(script.contains(".text.unlikely._RINvNtCs*_4core3ptr4readReECs*_3hot*"));
    }
}
