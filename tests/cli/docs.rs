//! `completions` and `man`: the scripts load in the real shells and complete
//! envcloak's commands and options; the man pages are valid roff for groff.

use crate::support::Workspace;

#[test]
fn bash_completion_completes_commands_and_options() {
    let ws = Workspace::new();
    let out = ws.envcloak().args(["completions", "bash"]).run();
    out.expect(0);
    ws.write("envcloak.bash", out.stdout());
    ws.command("bash").args(["-n", "envcloak.bash"]).run().expect(0);
    // Ask the loaded completion function, as bash would on <TAB>.
    let complete = |words: &str| {
        let script = format!(
            "source ./envcloak.bash; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             _envcloak envcloak \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\""
        );
        let out = ws.command("bash").args(["-c", &script]).run();
        out.expect(0);
        out.stdout()
    };
    let commands = complete("envcloak ''");
    for command in
        ["run", "check", "export", "keygen", "encrypt", "decrypt", "edit", "scan", "trust", "completions", "man"]
    {
        assert!(commands.lines().any(|l| l == command), "`{command}` is not offered: {commands}");
    }
    let options = complete("envcloak run --cl");
    assert!(options.lines().any(|l| l == "--clean-env"), "run --cl does not complete: {options}");
    let shells = complete("envcloak completions ''");
    for shell in ["bash", "zsh", "fish"] {
        assert!(shells.lines().any(|l| l == shell), "`{shell}` is not offered: {shells}");
    }
}

#[test]
#[cfg_attr(missing_zsh, ignore = "needs zsh: apt-get install zsh")]
fn zsh_completion_loads_in_the_real_shell() {
    require!(Zsh);
    let ws = Workspace::new();
    let out = ws.envcloak().args(["completions", "zsh"]).run();
    out.expect(0);
    assert!(out.stdout().starts_with("#compdef envcloak"), "not a zsh completion function");
    ws.write("_envcloak", out.stdout());
    ws.command("zsh").args(["-n", "_envcloak"]).run().expect(0);
    let script = "fpath=($PWD $fpath); autoload -Uz compinit; compinit -u -d $PWD/zcompdump; \
                      print -r -- ${_comps[envcloak]}";
    let loaded = ws.command("zsh").args(["-f", "-c", script]).run();
    loaded.expect(0);
    assert_eq!(loaded.stdout().trim(), "_envcloak", "compinit did not register the function");
}

#[test]
#[cfg_attr(missing_fish, ignore = "needs fish: apt-get install fish")]
fn fish_completion_loads_in_the_real_shell() {
    require!(Fish);
    let ws = Workspace::new();
    let out = ws.envcloak().args(["completions", "fish"]).run();
    out.expect(0);
    ws.write("envcloak.fish", out.stdout());
    ws.command("fish").args(["--no-execute", "envcloak.fish"]).run().expect(0);
    let script = "source ./envcloak.fish; complete -C 'envcloak ch'";
    let completed = ws.command("fish").args(["--no-config", "-c", script]).run();
    completed.expect(0);
    assert!(completed.stdout().lines().any(|l| l.starts_with("check")), "fish does not complete `check`");
}

#[test]
#[cfg_attr(missing_groff, ignore = "needs groff: apt-get install groff-base")]
fn man_pages_render_without_warnings_for_envcloak_and_each_command() {
    require!(Groff);
    let ws = Workspace::new();
    let top = ws.envcloak().arg("man").run();
    top.expect(0);
    assert!(top.stdout().contains(".TH envcloak 1"), "no .TH header for envcloak(1)");
    let mut pages = vec![("envcloak".to_owned(), top.stdout())];
    for command in
        ["run", "check", "export", "keygen", "encrypt", "decrypt", "edit", "scan", "trust", "completions", "man"]
    {
        let out = ws.envcloak().args(["man", command]).run();
        out.expect(0);
        assert!(out.stdout().contains(&format!(".TH envcloak-{command} 1")), "no .TH header for envcloak-{command}");
        pages.push((format!("envcloak-{command}"), out.stdout()));
    }
    assert!(pages[1].1.contains("clean\\-env"), "envcloak-run(1) does not document --clean-env");
    for (name, roff) in pages {
        // -P-cbou: plain text, without overstrike, bold or underline.
        let rendered = ws.command("groff").args(["-man", "-Tutf8", "-ww", "-P-cbou"]).stdin(roff).run();
        rendered.expect(0);
        assert!(rendered.stderr().trim().is_empty(), "groff warns about {name}(1):\n{}", rendered.stderr());
        assert!(rendered.stdout().contains("SYNOPSIS"), "{name}(1) has no SYNOPSIS");
    }
}

#[test]
fn an_unknown_command_or_shell_is_refused_with_the_choices() {
    let ws = Workspace::new();
    ws.envcloak().args(["man", "nope"]).run().expect(125).stderr_has(&["no command `nope`", "run", "check"]);
    ws.envcloak().args(["completions", "tcsh"]).run().expect(125).stderr_has(&["tcsh", "bash"]);
}
