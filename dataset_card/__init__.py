"""The dataset card template, shipped inside the iab package as iab.dataset_card."""
