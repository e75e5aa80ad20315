"""The official prompt set (see NOTICE.md), shipped inside the iab package as iab.prompt_set."""
