"""Applications of the synthesis loop; each builds the loop's inputs for one job."""
