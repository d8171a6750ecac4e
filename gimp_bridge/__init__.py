"""The local server: Gradio app + bridge API for the GIMP plug-in."""
