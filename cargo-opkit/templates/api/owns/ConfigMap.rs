{% call dependent("ConfigMap", ["The " ~ kind ~ "'s ConfigMap: the entries of `data`."]) %}
        ConfigMap {
            metadata: metadata({= var =}),
            data: Some({= var =}.spec.data.clone()),
            ..Default::default()
        }
{% endcall %}
