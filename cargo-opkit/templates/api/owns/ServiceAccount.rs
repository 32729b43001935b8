{% call dependent("ServiceAccount", ["The " ~ kind ~ "'s ServiceAccount: the identity of its pods towards the API server."]) %}
        ServiceAccount {
            metadata: metadata({= var =}),
            ..Default::default()
        }
{% endcall %}
