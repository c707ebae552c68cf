use super::*;

#[test]
fn the_starter_config_loads_with_the_sandbox_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(STARTER, None, dir.path()).unwrap();
    assert!(
        config.platform.sandbox,
        "the starter works without an account"
    );
    assert_eq!(config.inbox, dir.path().join("inbox"));
    assert_eq!(config.state_dir, dir.path().join(".dropcast"));
}

#[test]
fn init_writes_the_config_and_creates_every_folder_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("new/studio");
    let made = init(&target).unwrap();
    assert_eq!(made.config, target.join("dropcast.yaml"));
    assert_eq!(std::fs::read_to_string(&made.config).unwrap(), STARTER);
    let names: Vec<_> = made.folders.iter().map(|(p, _)| p.clone()).collect();
    let want: Vec<_> = ["inbox", "done", "failed", "duplicates", ".dropcast"]
        .map(|n| target.join(n))
        .to_vec();
    assert_eq!(names, want);
    assert!(
        made.folders
            .iter()
            .all(|(p, created)| *created && p.is_dir())
    );
}

// Pins: a second `init` must refuse and leave the user's edited config as it was.
#[test]
fn init_refuses_an_existing_config_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dropcast.yaml");
    std::fs::write(&config, "inbox: ./mine\n").unwrap();
    let err = init(dir.path()).unwrap_err();
    assert!(
        matches!(&err, InitError::Exists(p) if *p == config),
        "{err}"
    );
    assert!(
        err.to_string().contains("dropcast.yaml already exists"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "inbox: ./mine\n");
    assert!(!dir.path().join("inbox").exists(), "no folder made either");
}

#[cfg(unix)]
#[test]
fn a_dangling_link_named_like_the_config_is_refused_too() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("dropcast.yaml");
    std::os::unix::fs::symlink(dir.path().join("elsewhere.yaml"), &link).unwrap();
    assert!(matches!(init(dir.path()), Err(InitError::Exists(_))));
    assert!(!dir.path().join("elsewhere.yaml").exists());
}

#[test]
fn folders_already_there_are_kept_and_said_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("inbox")).unwrap();
    std::fs::write(dir.path().join("inbox/clip.mp4"), b"mine").unwrap();
    let made = init(dir.path()).unwrap();
    assert_eq!(made.folders[0], (dir.path().join("inbox"), false));
    assert!(made.folders[1..].iter().all(|(_, created)| *created));
    assert_eq!(
        std::fs::read(dir.path().join("inbox/clip.mp4")).unwrap(),
        b"mine"
    );
    let text = made.render(None, false);
    assert!(text.contains("kept "), "{text}");
}

#[test]
fn the_next_command_names_the_config_unless_it_is_the_default_one() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("with space");
    let made = init(&target).unwrap();
    let elsewhere = made.render(Some(dir.path()), false);
    let want = format!("next:       dropcast -c {} watch", quoted(&made.config));
    assert!(elsewhere.contains(&want), "{elsewhere}");
    if cfg!(unix) {
        assert!(want.contains("'"), "a path with a space is quoted: {want}");
    }
    let here = made.render(Some(&target), false);
    assert!(here.contains("next:       dropcast watch"), "{here}");
    let env_set = made.render(Some(&target), true);
    assert!(
        env_set.contains("dropcast -c "),
        "$DROPCAST_CONFIG would win: {env_set}"
    );
}
