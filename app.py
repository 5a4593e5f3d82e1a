"""umask dashboard: ``streamlit run app.py``.

A thin shell: page config, the navigation, nothing else. Each page in
``app_pages/`` wires widgets to the ``umask`` package; shared glue is in ``ui/``.
"""

# (file, title, icon) in the order a visitor meets them.
PAGES = [
    ("adversarial.py", "Adversarial example", ":material/visibility:"),
    ("generate.py", "Generate", ":material/auto_awesome:"),
    ("explore.py", "Explore", ":material/grid_view:"),
    ("study.py", "Study sweeps", ":material/monitoring:"),
    ("geometry.py", "Geometry", ":material/scatter_plot:"),
]


def main() -> None:
    # Imported here, not above: a worker process that re-imports this file
    # (see the end) needs neither streamlit nor the pages' glue.
    import streamlit as st

    st.set_page_config(page_title="umask: one image, many classes", page_icon=":performing_arts:", layout="wide")
    # Start the server's first worker process before this process imports
    # torch: the two imports (seconds each) then overlap instead of following
    # each other, and a class's first click finds the worker ready.
    from ui.server import start_first_worker

    start_first_worker()
    # The first visit after the server starts imports PyTorch and the
    # package (seconds on a laptop): said on the page, not a blank screen.
    with st.spinner("Starting umask: loading PyTorch (the first visit after the server starts takes a few seconds)..."):
        from ui.look import style_page
        from ui.server import configure_torch
        from ui.session import keep_run_alive
    configure_torch()
    style_page()
    keep_run_alive()  # a run goes on while its tab shows another page
    navigation = st.navigation([st.Page(f"app_pages/{file}", title=title, icon=icon) for file, title, icon in PAGES])
    navigation.run()


# Streamlit runs this file as __main__. A worker process (spawned) imports it
# again as __mp_main__, as multiprocessing does with the main script: there it
# must draw nothing (it ran a page, bare, in every new worker).
if __name__ == "__main__":
    main()
